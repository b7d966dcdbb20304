"""generator.progress: a live bar on a terminal, whole throttled lines in a log."""

import io

from generator.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_whole_lines_and_the_last_state():
    log = io.StringIO()
    bar = progress_bar(range(200), desc="pairs", unit="pair", stream=log, log_every_s=3600)
    for i in bar:
        bar.set_postfix(i=i)  # tqdm refreshes at once here; the log must not get a line each
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3, lines  # the first refresh, the last state (and its close)
    assert lines[0].startswith("pairs:")
    assert "200/200" in lines[-1] and "i=199" in lines[-1]
    assert all(len(line) <= 100 for line in lines)


def test_a_log_gets_a_line_per_interval():
    log = io.StringIO()
    bar = progress_bar(total=5, desc="train", stream=log, log_every_s=0.0, mininterval=0)
    for _ in range(5):
        bar.update(1)
    bar.close()
    lines = log.getvalue().splitlines()
    assert [line.split("|")[0].strip() for line in lines[:2]] == ["train:   0%", "train:  20%"]
    assert "5/5" in lines[-1]


def test_a_terminal_gets_the_live_bar():
    term = _Terminal()
    bar = progress_bar(total=3, desc="bench", stream=term)
    bar.update(3)
    bar.close()
    assert "\r" in term.getvalue() and "3/3" in term.getvalue()


def test_disabled_writes_nothing():
    for stream in (io.StringIO(), _Terminal()):
        bar = progress_bar(range(3), enabled=False, stream=stream)
        assert list(bar) == [0, 1, 2]
        assert stream.getvalue() == ""


def test_a_slow_bars_last_state_is_written_once():
    """A bar slower than an item a second shows seconds an item ('2.83s/run'): its closing
    refresh, the same progress at another rate, was written again (seen: 'bench generator:
    100% ... 7/7' twice in a redirected fovea bench generator log)."""
    from generator.progress import _LinesForLogs

    log = io.StringIO()
    lines = _LinesForLogs(log, every_s=0.0)
    lines.write("\rbench generator: 100%|#####| 7/7 [00:23<00:00,  2.83s/run]")
    lines.write("\rbench generator: 100%|#####| 7/7 [00:23<00:00,  3.33s/run]")
    lines.write("\n")
    assert log.getvalue().splitlines() == [
        "bench generator: 100%|#####| 7/7 [00:23<00:00,  2.83s/run]"
    ]
