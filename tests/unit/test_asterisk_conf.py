"""The Asterisk config reader doctor uses (voicemail.conf, the dialplan)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callscreen import asterisk_conf


def test_sections_items_comments_templates_and_includes(tmp_path: Path) -> None:
    (tmp_path / "more.conf").write_text("[office]\n7 => 1234,Bob\n#include main.conf\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.conf").write_text("[globbed]\nx = 1\n")
    main = tmp_path / "main.conf"
    main.write_text(
        "ignored = before any section\n"
        "[general]\nformat = wav ; a comment\npass = a\\;b\n"
        ";-- a block\n[fake]\n comment --;\n"
        "[tpl](!)\nattach=yes\n"
        "[default](tpl)\n101 => 1234,Alice ;-- inline --; \n"
        '#include "more.conf"\n#tryinclude nothing.conf\n#include d/*.conf\n#exec /bin/false\n'
    )
    sections = asterisk_conf.read(main)
    names = [s.name for s in sections]
    assert names == ["general", "tpl", "default", "office", "globbed"]  # include cycle: once
    by = asterisk_conf.by_name(sections)
    assert by["general"][0].items == [("format", "wav"), ("pass", "a;b")]
    assert by["tpl"][0].options == "!" and by["default"][0].options == "tpl"
    assert by["default"][0].keys() == {"101"}
    assert by["office"][0].items == [("7", "1234,Bob")]
    assert by["default"][0].lines == ["101 => 1234,Alice"]


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(asterisk_conf.ConfError, match="cannot read"):
        asterisk_conf.read(tmp_path / "none.conf")
    bad = tmp_path / "bad.conf"
    bad.write_text("[a]\n#include gone.conf\n")
    with pytest.raises(asterisk_conf.ConfError, match="no such file"):
        asterisk_conf.read(bad)
