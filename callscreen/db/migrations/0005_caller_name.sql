-- callscreen schema, version 5: the caller's name (agi_calleridname) in the call log.
--
-- Kept as sent, like caller_raw, and bounded like it (at most 256 characters, the cut marked
-- "…[+N chars]", callscreen.inert.bound). NULL for rows logged before this version. Not in any
-- index: `log` reads it from the table rows it already reads; `stats` never needs it.
ALTER TABLE call_log ADD COLUMN caller_name TEXT;
