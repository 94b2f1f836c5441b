-- callscreen schema, version 2: temporary entries and the indexes behind `callscreen stats`.

-- NULL: never expires. The screening lookup skips entries whose time has passed; `list` shows
-- them as expired until they are removed (or added again, which revives them).
ALTER TABLE entries ADD COLUMN expires_at REAL;

-- `stats`: counts by result/reason/treatment and hits per entry in one ordered scan of a
-- covering index (no sort, no table reads), with the --ext and --since filters inside it.
CREATE INDEX call_log_stats ON call_log (account_id, result, reason, treatment, entry_id, ext, time);
-- `stats`: the most blocked numbers, grouped in index order.
CREATE INDEX call_log_callers ON call_log (account_id, result, caller_e164, ext, time);
