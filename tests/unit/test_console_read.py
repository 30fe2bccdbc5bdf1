"""GetConsoleOutput answers base64 (AWS) or, from some emulators, plain text."""

import base64

import pytest

from orchestrator.observe.console import read_console

TEXT = "[ 1.0] Out of memory: Killed process 25910 (ruby) total-vm:16287724kB, anon-rss:15310180kB\n"


class FakeEc2:
    def __init__(self, output: str) -> None:
        self.output = output

    def get_console_output(self, **kwargs):
        return {"Output": self.output}


@pytest.mark.parametrize("wire", [base64.b64encode(TEXT.encode()).decode(), TEXT])
def test_both_encodings_give_the_text(wire):
    assert read_console(FakeEc2(wire), "i-1") == (TEXT, None)


def test_empty_console_is_empty_text():
    assert read_console(FakeEc2(""), "i-1") == ("", None)
