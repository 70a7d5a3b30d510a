"""Worker logs are structured and never show a full ID number."""
import json
import logging

from streams.logs import JsonFormatter, RepeatFilter, TextFormatter, logging_config, mask_text


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


def _at(level: int, msg: str, *args, name: str = "aiokafka") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeated_lines_pass_once_then_once_per_window_with_the_suppressed_count():
    now = [0.0]
    f = RepeatFilter(window=30, clock=lambda: now[0])
    unable = "Unable connect to node with id %s: [Errno 111] Connect call failed ('127.0.0.1', %s)"
    passed = []
    for i in range(100):  # 10 a second for 10 s, with ports that differ from line to line
        now[0] = i / 10
        r = _at(logging.ERROR, unable, 111, 40000 + i)
        if f.filter(r):
            passed.append(r.getMessage())
    assert passed == ["Unable connect to node with id 111: [Errno 111] Connect call failed ('127.0.0.1', 40000)"]

    other = _at(logging.ERROR, "Unable to update metadata from [%s]", 111)
    assert f.filter(other)  # another kind of line has its own window

    now[0] = 30.5  # the window is over: the next one passes with the count, then the count restarts
    r = _at(logging.ERROR, unable, 111, 40100)
    assert f.filter(r)
    assert r.getMessage() == ("Unable connect to node with id 111: [Errno 111] Connect call failed "
                              "('127.0.0.1', 40100) (99 similar lines suppressed)")
    assert not f.filter(_at(logging.ERROR, unable, 111, 40101))
    now[0] = 61
    r = _at(logging.ERROR, unable, 111, 40102)
    assert f.filter(r) and r.getMessage().endswith("(1 similar lines suppressed)")


def test_repeat_filter_keeps_ids_masked_and_holds_back_no_critical_info_or_relayed_traceback_line():
    f = RepeatFilter(window=30, clock=lambda: 0.0)
    assert all(f.filter(_at(logging.CRITICAL, "broker gone")) for _ in range(3))
    assert all(f.filter(_at(logging.INFO, "rebalancing")) for _ in range(3))
    assert all(f.filter(_at(logging.WARNING, "^", name="mode.redirect")) for _ in range(3))
    assert f.filter(_at(logging.WARNING, "refused %s", "530102195001010011"))
    assert not f.filter(_at(logging.WARNING, "refused %s", "530102195001010012"))  # similar: held back
    assert f.filter(_at(logging.ERROR, "refused %s", "530102195001010011"))  # another level: its own kind

    now = [0.0]
    f = RepeatFilter(window=30, clock=lambda: now[0])
    for _ in range(3):
        f.filter(_at(logging.WARNING, "psn %s refused", "530102195001010011"))
    now[0] = 31
    r = _at(logging.WARNING, "psn %s refused", "530102195001010011")
    assert f.filter(r)
    doc = json.loads(JsonFormatter().format(r))
    assert doc["message"] == "psn 5301************11 refused (2 similar lines suppressed)"


def test_the_worker_logging_config_rate_limits_its_handler():
    config = logging_config("info", "json")
    handler = config["handlers"]["default"]
    assert [config["filters"][name]["()"] for name in handler["filters"]] == ["streams.logs.RepeatFilter"]
