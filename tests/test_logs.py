"""Worker logs are structured and never show a full ID number."""
import json
import logging

from streams.logs import JsonFormatter, TextFormatter, mask_text


def _record(msg: str, *args) -> logging.LogRecord:
    return logging.LogRecord("yibao.test", logging.WARNING, __file__, 1, msg, args, None)


def test_id_numbers_are_masked_in_any_message():
    assert mask_text("person 53010219500101001X refused") == "person 5301************1X refused"
    assert mask_text("psn 530102195001010011, offset 12345") == "psn 5301************11, offset 12345"
    assert mask_text("setl_id SH53010100001202411051030000001") == "setl_id SH53010100001202411051030000001"


def test_json_lines_carry_level_logger_and_masked_message():
    line = JsonFormatter().format(_record("settled %s", "530102195001010011"))
    doc = json.loads(line)
    assert (doc["level"], doc["logger"], doc["message"]) == ("WARNING", "yibao.test", "settled 5301************11")


def test_text_format_masks_too():
    assert "5301************11" in TextFormatter().format(_record("psn %s", "530102195001010011"))
