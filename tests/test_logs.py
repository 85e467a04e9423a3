"""training/logs.py: a command's log lines go to the standard error of the moment, in its format, once."""

import logging

from training.logs import CurrentStderr, log_to_stderr


def test_records_go_to_the_current_stderr_in_the_commands_format_and_a_second_call_replaces_the_first(capsys):
    root = logging.getLogger()
    before = list(root.handlers), root.level
    ours = {name: logging.getLogger(name).level for name in ("training", "srstream", "medical", "demo")}
    try:
        log_to_stderr("%(levelname)s %(message)s", logging.INFO)
        log_to_stderr("srmed-test: %(message)s", logging.INFO)  # a second command in one process
        assert sum(isinstance(h, CurrentStderr) for h in root.handlers) == 1
        logging.getLogger("medical.run").info("volume %d: in-plane", 3)
        logging.getLogger("medical.run").debug("not shown")
        logging.getLogger("pynetdicom").error("Association request failed")  # ours says it in one line
        logging.getLogger("urllib3.connectionpool").info("a library's own chatter")  # not this command's to show
        assert capsys.readouterr().err == "srmed-test: volume 3: in-plane\n"
        log_to_stderr(level=logging.WARNING)  # -q
        logging.getLogger("medical.run").info("hidden")
        logging.getLogger("medical.run").warning("shown")
        assert capsys.readouterr().err == "shown\n"
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
        for name, level in ours.items():
            logging.getLogger(name).setLevel(level)
