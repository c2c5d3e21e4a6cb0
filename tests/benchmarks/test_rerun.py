"""A report's command is one a reader can run again: the options that change the figures stay, the
folders of the machine that ran it (`--work`, `--out`, in either spelling) go."""

from benchmarks.rerun import rerun_command


def test_machine_folders_are_left_out_and_every_other_option_kept() -> None:
    argv = ["--work", "/tmp/fed24b-work", "--updates", "8", "--out=/tmp/fed24b-work/full", "--buffer", "2"]
    assert rerun_command("benchmarks.federated_async", argv) == "python -m benchmarks.federated_async --updates 8 --buffer 2"
    assert rerun_command("benchmarks.federated", []) == "python -m benchmarks.federated"
    assert rerun_command("benchmarks.federated", ["--learning-rate", "0.01 "]) == "python -m benchmarks.federated --learning-rate '0.01 '"
