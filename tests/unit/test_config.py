"""The option table, config files and the command line (features §1.1, §1.2, §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmdebootstrap import cli, config, main, options
from vmdebootstrap.errors import UsageError
from vmdebootstrap.options import BY_NAME, OPTIONS

from .conftest import Vmd

BOOL_OPTIONS = [o.name for o in OPTIONS if o.kind == "bool"]
CONFIG_BOOL_OPTIONS = [o.name for o in OPTIONS if o.kind == "bool" and not o.cli_only]


def load(*argv: str) -> dict[str, object]:
    values = cli.load(["--no-default-configs", *argv]).values
    return values


def ini(path: Path, body: str) -> str:
    path.write_text(body)
    return str(path)


# -- the option table --------------------------------------------------------


def test_option_names_are_unique_and_kinds_known() -> None:
    names = [o.name for o in OPTIONS]
    assert len(names) == len(set(names))
    assert {o.kind for o in OPTIONS} <= {"bool", "str", "list", "size"}
    assert set(BY_NAME) == set(names)


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_defaults_match_kinds(option: options.Option) -> None:
    expected = {"bool": bool, "str": str, "list": list, "size": int}[option.kind]
    assert isinstance(option.default, expected)


def test_old_tool_defaults() -> None:
    values = load()
    assert values["size"] == 1_000_000_000
    assert values["esp-size"] == 256 * 1024 * 1024  # the old 5 MiB held no real system's ESP
    assert values["extlinux"] is True
    assert values["systemd-networkd"] is True
    assert values["update-initramfs"] is True
    assert values["hostname"] == "debian"
    assert values["distribution"] == "stable"
    assert values["part-type"] == "msdos"
    assert values["roottype"] == "ext4"
    assert values["boottype"] == "ext2"
    assert values["serial-console-command"] == "/sbin/getty -L ttyS0 115200 vt100"
    assert values["package"] == []
    assert values["check-gpg"] is True


def test_list_defaults_are_fresh_copies() -> None:
    first = load()
    assert isinstance(first["components"], list)
    first["components"].append("contrib")
    assert load()["components"] == ["main"]
    assert BY_NAME["components"].default == ["main"]


# -- booleans ------------------------------------------------------------------


@pytest.mark.parametrize("name", BOOL_OPTIONS)
def test_every_boolean_has_a_negation_on_the_command_line(name: str) -> None:
    assert cli.parse_command_line([f"--{name}"])[name] is True
    assert cli.parse_command_line([f"--no-{name}"])[name] is False
    # The last one given wins, as with optparse.
    assert cli.parse_command_line([f"--{name}", f"--no-{name}"])[name] is False


@pytest.mark.parametrize("name", CONFIG_BOOL_OPTIONS)
def test_no_option_overrides_a_config_file(tmp_path: Path, name: str) -> None:
    path = ini(tmp_path / "a.conf", f"[config]\n{name} = yes\n")
    assert load("--config", path)[name] is True
    assert load("--config", path, f"--no-{name}")[name] is False


@pytest.mark.parametrize("word", ["yes", "YES", "on", "On", "true", "True", "1", " yes "])
def test_config_true_words(tmp_path: Path, word: str) -> None:
    path = ini(tmp_path / "a.conf", f"[config]\nsudo = {word}\n")
    assert load("--config", path)["sudo"] is True


@pytest.mark.parametrize("word", ["no", "off", "false", "0", "", "y", "2", "enabled", "yess"])
def test_config_anything_else_is_false(tmp_path: Path, word: str) -> None:
    # systemd-networkd defaults to true, so a false result is the word's doing.
    path = ini(tmp_path / "a.conf", f"[config]\nsystemd-networkd = {word}\n")
    assert load("--config", path)["systemd-networkd"] is False


def test_parse_bool_direct() -> None:
    assert config.parse_bool(True) is True
    assert config.parse_bool(False) is False
    assert config.parse_bool("ON") is True
    assert config.parse_bool(None) is False


# -- sizes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000", 1000),
        ("1k", 10**3), ("1K", 10**3), ("2m", 2 * 10**6), ("2M", 2 * 10**6), ("3g", 3 * 10**9),
        ("3G", 3 * 10**9), ("1t", 10**12),
        ("1ki", 2**10), ("1Ki", 2**10), ("2mi", 2 * 2**20), ("3gi", 3 * 2**30), ("1ti", 2**40),
        ("5mib", 5 * 2**20), ("5MiB", 5 * 2**20), ("10kb", 10**4), ("1.5G", 1_500_000_000),
    ],
)  # fmt: skip
def test_sizes(text: str, expected: int) -> None:
    assert config.parse_size(text, "--size") == expected
    assert cli.parse_command_line(["--size", text])["size"] == expected


@pytest.mark.parametrize("text", ["ten", "1x", "1kk", "-5", "", "G", "1 2G", "0%"])
def test_bad_size_on_command_line_names_the_option(text: str) -> None:
    with pytest.raises(UsageError) as info:
        cli.parse_command_line([f"--bootsize={text}"])
    assert str(info.value).startswith("--bootsize: ")
    assert "is not a size" in str(info.value)


def test_bad_size_in_config_names_file_and_key(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.conf", "[config]\nswap = lots\n")
    with pytest.raises(UsageError) as info:
        load("--config", path)
    assert str(info.value) == f"{path}: swap: 'lots' is not a size (use e.g. 2G, 500M, 512MiB)"


def test_size_in_config(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.conf", "[config]\nsize = 8G\nesp-size = 5mib\nbootsize = 0\n")
    values = load("--config", path)
    assert (values["size"], values["esp-size"], values["bootsize"]) == (8 * 10**9, 5 * 2**20, 0)


# -- lists -------------------------------------------------------------------------


def test_list_options_are_repeatable_and_not_split_on_the_command_line() -> None:
    values = load("--package", "vim", "--package", "a,b", "--user", "bob/x,y")
    assert values["package"] == ["vim", "a,b"]
    assert values["user"] == ["bob/x,y"]


def test_lists_in_ini_are_comma_separated_and_quotes_protect_commas(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.conf",
               '[config]\npackage = aptitude,apt-utils , vim\n'
               'debootstrapopts = "components=main,contrib", variant=buildd\n'
               'custom-package =\n')
    values = load("--config", path)
    assert values["package"] == ["aptitude", "apt-utils", "vim"]
    assert values["debootstrapopts"] == ["components=main,contrib", "variant=buildd"]
    assert values["custom-package"] == []


def test_split_list_direct() -> None:
    assert config.split_list('a, "b,c" ,d,,') == ["a", "b,c", "d"]
    assert config.split_list("") == []


def test_command_line_list_replaces_config_list(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.conf", "[config]\npackage = vim, less\ncomponents = main, contrib\n")
    values = load("--config", path, "--package", "emacs")
    assert values["package"] == ["emacs"]
    assert values["components"] == ["main", "contrib"]


# -- config file forms and errors ------------------------------------------------------


def test_ini_keys_are_long_option_names_and_other_sections_are_ignored(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.conf",
               "[other]\nhostname = ignored\nfrobnicate = 1\n\n"
               "[config]\nhostname = node01\nenable-dhcp = True\nroot-password = s3cret\n"
               "mirror = http://mirror.example/debian/\nlog-max = 0\n")
    values = load("--config", path)
    assert values["hostname"] == "node01"
    assert values["enable-dhcp"] is True
    assert values["root-password"] == "s3cret"
    assert values["mirror"] == "http://mirror.example/debian/"


def test_ini_without_config_section_sets_nothing(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.conf", "[something]\nhostname = x\n")
    assert load("--config", path)["hostname"] == "debian"


def test_ini_accepts_underscores_for_dashes(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.conf", "[config]\nenable_dhcp = yes\n")
    assert load("--config", path)["enable-dhcp"] is True


def test_yaml_config(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.yaml",
               "config:\n  hostname: yamlhost\n  sudo: yes\n  package: [vim, less]\n"
               "  user: 'bob, alice'\n  size: 2GiB\n  lock-root-password: false\n")
    values = load("--config", path)
    assert values["hostname"] == "yamlhost"
    assert values["sudo"] is True
    assert values["package"] == ["vim", "less"]
    assert values["user"] == ["bob", "alice"]
    assert values["size"] == 2 * 2**30
    assert values["lock-root-password"] is False


def test_empty_yaml_sets_nothing(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.yml", "")
    assert load("--config", path)["hostname"] == "debian"


@pytest.mark.parametrize(("name", "body"), [("a.conf", "[config]\nfrobnicate = 1\n"),
                                            ("a.yaml", "config:\n  frobnicate: 1\n")])
def test_unknown_config_key_names_file_and_key(tmp_path: Path, name: str, body: str) -> None:
    path = ini(tmp_path / name, body)
    with pytest.raises(UsageError) as info:
        load("--config", path)
    assert str(info.value) == f"{path}: unknown setting 'frobnicate'"


@pytest.mark.parametrize("key", ["config", "dump-config", "no-default-configs", "list-config-files"])
def test_command_line_only_options_are_not_config_keys(tmp_path: Path, key: str) -> None:
    path = ini(tmp_path / "a.conf", f"[config]\n{key} = yes\n")
    with pytest.raises(UsageError, match=f"unknown setting '{key}'"):
        load("--config", path)


def test_removed_option_from_old_configs_is_an_error(tmp_path: Path) -> None:
    # 'no-extlinux' was never a config key; old configs with it must fail loudly.
    path = ini(tmp_path / "a.conf", "[config]\nno-extlinux = yes\n")
    with pytest.raises(UsageError, match="unknown setting 'no-extlinux'"):
        load("--config", path)


@pytest.mark.parametrize(
    ("name", "body", "fragment"),
    [
        ("a.conf", "hostname = x\n", "not a valid INI file"),
        ("a.conf", "[config\nhostname = x\n", "not a valid INI file"),
        ("a.conf", "[config]\njust some words\n", "not a valid INI file"),
        ("a.yaml", "config: [unclosed\n", "not a valid YAML file"),
        ("a.yaml", "config:\n  a: b\n c: d\n", "not a valid YAML file"),
        ("a.yaml", "- a\n- b\n", "needs a top-level 'config:' mapping"),
        ("a.yaml", "config: [a, b]\n", "needs a top-level 'config:' mapping"),
        ("a.yaml", "hostname: x\n", "unknown top-level key 'hostname'"),
    ],
)
def test_garbled_config_names_the_file(tmp_path: Path, name: str, body: str, fragment: str) -> None:
    path = ini(tmp_path / name, body)
    with pytest.raises(UsageError) as info:
        load("--config", path)
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.conf")
    with pytest.raises(UsageError, match=f"--config {path}: No such file"):
        load("--config", path)


def test_binary_config_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.conf"
    path.write_bytes(b"\xff\xfe\x00[config]\nhostname = x\n")
    with pytest.raises(UsageError) as info:
        load("--config", str(path))
    assert str(info.value).startswith(f"{path}")


def test_yaml_non_string_key_is_a_usage_error(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.yaml", "config:\n  1: x\n")
    with pytest.raises(UsageError) as info:
        load("--config", path)
    assert str(info.value).startswith(f"{path}: ")


def test_yaml_octal_log_mode_keeps_its_meaning(tmp_path: Path) -> None:
    path = ini(tmp_path / "a.yaml", "config:\n  log-mode: 0644\n")
    assert int(str(load("--config", path)["log-mode"]), 8) == 0o644


# -- precedence, default files -------------------------------------------------------------


def test_precedence_defaults_then_configs_in_order_then_command_line(tmp_path: Path) -> None:
    first = ini(tmp_path / "1.conf", "[config]\nhostname = one\nmirror = http://one/\nsudo = yes\n")
    second = ini(tmp_path / "2.conf", "[config]\nhostname = two\n")
    values = load("--config", first, "--config", second)
    assert (values["hostname"], values["mirror"], values["sudo"]) == ("two", "http://one/", True)
    assert values["arch"] == ""  # untouched default
    values = load("--config", first, "--config", second, "--hostname", "cli")
    assert values["hostname"] == "cli"
    # Reversed order: the later file wins.
    assert load("--config", second, "--config", first)["hostname"] == "one"


def test_default_config_files_are_read_unless_no_default_configs(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    default = ini(tmp_path / "default.conf", "[config]\nhostname = fromdefault\nsudo = yes\n")
    missing = str(tmp_path / "absent.conf")
    extra = ini(tmp_path / "extra.conf", "[config]\nhostname = fromextra\n")
    monkeypatch.setattr(cli, "default_config_files", lambda: [default, missing])

    loaded = cli.load([])
    assert loaded.files == [default]
    assert loaded.values["hostname"] == "fromdefault"

    loaded = cli.load(["--config", extra])
    assert loaded.files == [default, extra]
    assert (loaded.values["hostname"], loaded.values["sudo"]) == ("fromextra", True)

    loaded = cli.load(["--no-default-configs", "--config", extra])
    assert loaded.files == [extra]
    assert (loaded.values["hostname"], loaded.values["sudo"]) == ("fromextra", False)


def test_default_config_search_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    conf_dir = home / ".config/vmdebootstrap"
    conf_dir.mkdir(parents=True)
    for name in ("b.conf", "a.yaml", "c.conf", "ignored.txt"):
        (conf_dir / name).write_text("")
    files = config.default_config_files(str(home))
    assert files[:2] == ["/etc/vmdebootstrap.conf", "/etc/vmdebootstrap.yaml"]
    home_part = [f"{home}/.vmdebootstrap.conf", f"{home}/.vmdebootstrap.yaml",
                 f"{conf_dir}/a.yaml", f"{conf_dir}/b.conf", f"{conf_dir}/c.conf"]
    assert files[-5:] == home_part
    middle = files[2:-5]
    assert all(f.startswith("/etc/vmdebootstrap/") for f in middle)
    assert middle == sorted(middle)
    # Without an explicit home, ~ is used.
    monkeypatch.setenv("HOME", str(home))
    assert config.default_config_files()[-5:] == home_part


# -- print-and-exit options ------------------------------------------------------------------


ROUND_TRIP_ARGS = (
    "--hostname", "node7", "--package", "vim", "--package", "a,b", "--size", "2GiB", "--sudo",
    "--no-systemd-networkd", "--debootstrapopts", "variant=buildd no-check-gpg",
    "--debootstrapopts", "components=main,contrib", "--user", "bob/pw", "--user", "eve",
    "--root-password", "hashed:$6$salt$abc", "--mirror", "http://m.example/debian/",
    "--serial-console-command", "/sbin/getty -L ttyS1 9600 vt100", "--log-mode", "0640",
    "--components", "main", "--components", "contrib", "--esp-size", "5mib",
)  # fmt: skip


def dump(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main.main(["--no-default-configs", *argv, "--dump-config"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def config_values(values: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in values.items() if not BY_NAME[k].cli_only}


def test_dump_config_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dumped = dump(capsys, *ROUND_TRIP_ARGS)
    assert dumped.startswith("[config]\n")
    assert "\nhostname = node7\n" in dumped
    assert '\npackage = vim, "a,b"\n' in dumped
    assert "\nsize = 2147483648\n" in dumped
    assert "\nsystemd-networkd = False\n" in dumped
    assert "dump-config" not in dumped and "no-default-configs" not in dumped
    path = tmp_path / "dumped.conf"
    path.write_text(dumped)

    original = load(*ROUND_TRIP_ARGS)
    reread = load("--config", str(path))
    # Every setting comes back, but the passwords: shown as <secret>, as in --report (issue 22).
    assert "\nuser = <secret>, <secret>\nroot-password = <secret>\n" in dumped and "pw" not in dumped
    assert {k: v for k, v in config_values(reread).items() if not BY_NAME[k].secret} == \
        {k: v for k, v in config_values(original).items() if not BY_NAME[k].secret}
    assert reread["package"] == ["vim", "a,b"]
    assert dump(capsys, "--config", str(path)) == dumped


def test_dump_config_hides_a_mirror_s_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    dumped = dump(capsys, "--mirror", "http://builder:S3cret@m.example/debian/", "--apt-mirror",
                  "https://ro:Tok3n@apt.example/debian/", "--configure-apt")
    assert "\nmirror = http://builder:<secret>@m.example/debian/\n" in dumped
    assert "\napt-mirror = https://ro:<secret>@apt.example/debian/\n" in dumped
    assert "S3cret" not in dumped and "Tok3n" not in dumped


def test_dump_config_of_defaults_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dumped = dump(capsys)
    path = tmp_path / "d.conf"
    path.write_text(dumped)
    assert config_values(load("--config", str(path))) == config_values(load())


def test_dump_config_shows_the_merged_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ini(tmp_path / "a.conf", "[config]\nhostname = fromfile\npackage = x, y\n")
    dumped = dump(capsys, "--config", path, "--package", "z")
    assert "\nhostname = fromfile\n" in dumped
    assert "\npackage = z\n" in dumped


def test_dump_config_round_trips_a_double_quote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dumped = dump(capsys, "--debootstrapopts", 'include="a b"')
    path = tmp_path / "d.conf"
    path.write_text(dumped)
    assert load("--config", str(path))["debootstrapopts"] == ['include="a b"']


def test_dump_setting_names(vmd: Vmd) -> None:
    status, stdout, _ = vmd("--dump-setting-names")
    names = stdout.split()
    assert status == 0
    assert "hostname" in names and "no-kernel" in names and "debootstrapopts" in names
    assert "config" not in names and "dump-config" not in names
    assert names == [o.name for o in OPTIONS if not o.cli_only]


def test_list_config_files(tmp_path: Path, vmd: Vmd) -> None:
    a = ini(tmp_path / "a.conf", "[config]\n")
    b = ini(tmp_path / "b.yaml", "")
    status, stdout, _ = vmd("--config", a, "--config", b, "--list-config-files")
    assert (status, stdout) == (0, f"{a}\n{b}\n")


def test_bad_option_is_a_usage_error(vmd: Vmd) -> None:
    status, _, err = vmd("--frobnicate")
    assert status == 2
    assert err.startswith("vmdebootstrap: error: ") and "--frobnicate" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from vmdebootstrap import __version__

    with pytest.raises(SystemExit) as info:
        cli.load(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"vmdebootstrap {__version__}"


def test_help_lists_options_and_hides_negations(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.load(["--help"])
    text = capsys.readouterr().out
    assert "--squash DIRECTORY" in text and "--enable-dhcp" in text
    assert "--no-enable-dhcp" not in text
    # Secrets never show a default; other options do.
    compact = " ".join(text.split())
    assert "--root-password PW root's password ('hashed:' for a crypt(3) hash) --" in compact
    assert "--hostname NAME host name of the image (default: debian)" in compact


def test_convert_config_values() -> None:
    assert config.convert(BY_NAME["size"], "1k", "--size") == 1000
    assert config.convert(BY_NAME["package"], "a, b", "--package") == ["a", "b"]
    assert config.convert(BY_NAME["package"], None, "--package") == []
    assert config.convert(BY_NAME["hostname"], None, "--hostname") == ""
