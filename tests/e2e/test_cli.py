"""The multi-call binary's own behaviour."""
import subprocess


def test_version_prints_name_and_version(berth_bin):
    out = subprocess.run([berth_bin, "version"], stdout=subprocess.PIPE, check=True).stdout
    assert out.decode().startswith("berth ")


def test_unknown_command_exits_2_with_one_line(berth_bin):
    p = subprocess.run([berth_bin, "frobnicate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 2
    assert b"unknown command" in p.stderr
    assert p.stderr.count(b"\n") == 1


def test_help_lists_commands(berth_bin):
    out = subprocess.run([berth_bin, "help"], stdout=subprocess.PIPE, check=True).stdout.decode()
    assert "version" in out


def test_global_options_need_a_value(berth_bin):
    p = subprocess.run([berth_bin, "--root"], stderr=subprocess.PIPE)
    assert p.returncode == 2
