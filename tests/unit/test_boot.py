"""The boot test (vmdebootstrap/boot): the QEMU command line, the KVM decision, verdicts on recorded consoles, and
boot_test's control flow against a fake QEMU (tests/unit/data/consoles/fake_qemu.py).

No real QEMU runs here.  The recorded transcripts under data/consoles are real
serial consoles (running.txt: a vmdebootstrap live ISO under TCG, trimmed; the
*-empty-disk.txt files: the firmwares facing an empty disk) or written after
real ones (panic, initramfs, emergency, hang).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from vmdebootstrap import architectures, hostdeps
from vmdebootstrap.boot import console as boot_console
from vmdebootstrap.boot import qemu, transcript
from vmdebootstrap.boot.qemu import BootTestError, qemu_command
from vmdebootstrap.boot.transcript import classify, read_console

from .conftest import MakeSettings
from .qemu import DATA, Fake, arch, make_image, option_values, target

MISSING_KVM_FLAGS = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sse sse2 hypervisor lahf_lm\n"
INTEL = MISSING_KVM_FLAGS.replace("hypervisor", "vmx hypervisor")
AMD = MISSING_KVM_FLAGS.replace("hypervisor", "svm hypervisor")


def console(name: str) -> str:
    return (DATA / name).read_text()


# -- qemu_command --------------------------------------------------------------------


def test_amd64_bios_iso(tmp_path: Path, firmware: dict[str, Path]) -> None:
    iso = make_image(tmp_path / "live.iso")
    argv = qemu_command(target(iso, "iso", "amd64", "bios"), tmp_path)
    assert argv[0] == "qemu-system-x86_64"
    assert option_values(argv, "-machine") == ["q35"]
    assert option_values(argv, "-accel") == ["tcg"]
    assert option_values(argv, "-cpu") == ["qemu64"]  # SSE2 glibc: TCG runs it fastest
    assert option_values(argv, "-cdrom") == [str(iso)]
    assert option_values(argv, "-m") == ["2048"]
    assert option_values(argv, "-smp") == ["2"]
    assert "-no-reboot" in argv
    assert "-snapshot" not in argv  # a CD is read-only anyway
    assert not any("pflash" in arg for arg in argv)
    # The console is our stdin/stdout, and nothing else is.
    assert option_values(argv, "-display") == ["none"]
    assert option_values(argv, "-monitor") == ["none"]
    assert option_values(argv, "-serial") == ["chardev:con"]
    assert "stdio,id=con,signal=off" in option_values(argv, "-chardev")
    assert "-nographic" not in argv and "mon:stdio" not in argv
    # SeaBIOS's own messages go to a file in the work directory.
    assert f"file,id=firmware,path={tmp_path}/firmware-amd64-bios.log" in option_values(argv, "-chardev")
    assert "isa-debugcon,iobase=0x402,chardev=firmware" in option_values(argv, "-device")
    assert option_values(argv, "-nic") == ["none"]


def test_amd64_uefi_iso_uses_readonly_code_and_a_copy_of_the_variables(tmp_path: Path,
                                                                       firmware: dict[str, Path]) -> None:
    iso = make_image(tmp_path / "live.iso")
    work = tmp_path / "work"
    work.mkdir()
    argv = qemu_command(target(iso, "iso", "amd64", "uefi"), work)
    assert argv[0] == "qemu-system-x86_64"
    assert option_values(argv, "-machine") == ["q35"]
    drives = option_values(argv, "-drive")
    assert f"if=pflash,format=raw,unit=0,readonly=on,file={firmware['OVMF_CODE_4M.fd']}" in drives
    assert f"if=pflash,format=raw,unit=1,file={work}/efivars-amd64.fd" in drives
    assert (work / "efivars-amd64.fd").read_bytes() == firmware["OVMF_VARS_4M.fd"].read_bytes()
    assert option_values(argv, "-cdrom") == [str(iso)]
    assert not any("debugcon" in arg for arg in argv)


def test_amd64_bios_raw_disk_is_a_virtio_drive_in_snapshot_mode(tmp_path: Path, firmware: dict[str, Path]) -> None:
    disk = make_image(tmp_path / "disk.img")
    argv = qemu_command(target(disk, "disk", "amd64", "bios"), tmp_path)
    assert option_values(argv, "-drive") == [f"if=virtio,format=raw,file={disk}"]
    assert "-snapshot" in argv
    assert "-cdrom" not in argv


def test_amd64_uefi_qcow2_disk_format_comes_from_the_magic(tmp_path: Path, firmware: dict[str, Path]) -> None:
    disk = make_image(tmp_path / "disk.raw", qcow2=True)  # the name does not matter
    argv = qemu_command(target(disk, "disk", "amd64", "uefi"), tmp_path)
    assert f"if=virtio,format=qcow2,file={disk}" in option_values(argv, "-drive")
    assert "-snapshot" in argv
    assert any(d.startswith("if=pflash,format=raw,unit=0,readonly=on,") for d in option_values(argv, "-drive"))


def test_arm64_uefi_iso_is_a_scsi_cd_on_virt(tmp_path: Path, firmware: dict[str, Path]) -> None:
    iso = make_image(tmp_path / "live.iso")
    argv = qemu_command(target(iso, "iso", "arm64", "uefi"), tmp_path)
    assert argv[0] == "qemu-system-aarch64"
    assert option_values(argv, "-machine") == ["virt"]
    assert option_values(argv, "-cpu") == ["cortex-a72"]  # no pointer authentication to emulate
    assert option_values(argv, "-accel") == ["tcg"]
    drives = option_values(argv, "-drive")
    assert f"if=pflash,format=raw,unit=0,readonly=on,file={firmware['AAVMF_CODE.fd']}" in drives
    assert f"if=pflash,format=raw,unit=1,file={tmp_path}/efivars-arm64.fd" in drives
    assert f"if=none,id=cd,media=cdrom,readonly=on,format=raw,file={iso}" in drives
    devices = option_values(argv, "-device")
    assert "virtio-scsi-pci" in devices and "scsi-cd,drive=cd" in devices
    assert "-cdrom" not in argv  # virt has no IDE
    assert "-snapshot" not in argv


def test_arm64_uefi_disk(tmp_path: Path, firmware: dict[str, Path]) -> None:
    disk = make_image(tmp_path / "disk.qcow2", qcow2=True)
    argv = qemu_command(target(disk, "disk", "arm64", "uefi"), tmp_path)
    assert argv[0] == "qemu-system-aarch64"
    assert f"if=virtio,format=qcow2,file={disk}" in option_values(argv, "-drive")
    assert "-snapshot" in argv
    assert "scsi-cd,drive=cd" not in option_values(argv, "-device")


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_kvm_uses_the_host_cpu(tmp_path: Path, firmware: dict[str, Path], arch: str) -> None:
    argv = qemu_command(target(make_image(tmp_path / "x.iso"), "iso", arch, "uefi"), tmp_path, kvm=True)
    assert option_values(argv, "-accel") == ["kvm"]
    assert option_values(argv, "-cpu") == ["host"]


def test_memory_and_binary_override(tmp_path: Path, firmware: dict[str, Path]) -> None:
    argv = qemu_command(target(make_image(tmp_path / "x.iso"), "iso", "amd64", "bios"), tmp_path, 512,
                        qemu="/opt/fake-qemu")
    assert argv[0] == "/opt/fake-qemu"
    assert option_values(argv, "-m") == ["512"]


def test_commas_in_paths_are_doubled_inside_drive_options(tmp_path: Path, firmware: dict[str, Path]) -> None:
    disk = make_image(tmp_path / "a,b.img")
    argv = qemu_command(target(disk, "disk", "amd64", "bios"), tmp_path)
    assert f"if=virtio,format=raw,file={tmp_path}/a,,b.img" in option_values(argv, "-drive")


def test_missing_firmware_names_the_package(tmp_path: Path, firmware: dict[str, Path]) -> None:
    firmware["AAVMF_VARS.fd"].unlink()
    with pytest.raises(BootTestError, match=r"uefi firmware for arm64 missing: .*AAVMF_VARS.fd \(apt-get install "
                                            r"qemu-efi-aarch64\)"):
        qemu.firmware_of(arch("arm64"), "uefi")
    firmware["qemu-riscv64_smode/u-boot.bin"].unlink()  # OpenSBI's payload comes from another package
    with pytest.raises(BootTestError, match=r"u-boot firmware for riscv64 missing: .*u-boot.bin \(apt-get install "
                                            r"u-boot-qemu\)"):
        qemu.firmware_of(arch("riscv64"), "u-boot")


def test_firmware_files(firmware: dict[str, Path]) -> None:
    uefi = qemu.firmware_of(arch("amd64"), "uefi")
    assert (uefi.code, uefi.variables) == (firmware["OVMF_CODE_4M.fd"], firmware["OVMF_VARS_4M.fd"])
    bios = qemu.firmware_of(arch("amd64"), "bios")
    assert (bios.code, bios.variables) == (firmware["bios-256k.bin"], None)


def test_u_boot_is_qemu_s_bios_and_opensbi_starts_it_on_riscv64(tmp_path: Path, firmware: dict[str, Path]) -> None:
    """u-boot-qemu's README.Debian: -bios u-boot.bin; riscv64: OpenSBI as -bios, u-boot's S-mode build
    as the kernel it jumps to.  armhf's kernel has no LPAE: the virt machine keeps PCI low."""
    disk = make_image(tmp_path / "x.img")
    arm64 = qemu_command(target(disk, "disk", "arm64", "u-boot"), tmp_path)
    assert option_values(arm64, "-bios") == [str(firmware["qemu_arm64/u-boot.bin"])]
    assert not option_values(arm64, "-kernel") and "if=pflash" not in " ".join(arm64)
    armhf = qemu_command(target(disk, "disk", "armhf", "u-boot"), tmp_path)
    assert armhf[0] == "qemu-system-arm" and option_values(armhf, "-machine") == ["virt,highmem=off"]
    assert option_values(armhf, "-cpu") == ["cortex-a15"]
    assert option_values(armhf, "-bios") == [str(firmware["qemu_arm/u-boot.bin"])]
    riscv = qemu_command(target(disk, "disk", "riscv64", "u-boot"), tmp_path)
    assert riscv[0] == "qemu-system-riscv64"
    assert option_values(riscv, "-bios") == [str(firmware["generic/fw_jump.bin"])]
    assert option_values(riscv, "-kernel") == [str(firmware["qemu-riscv64_smode/u-boot.bin"])]
    for argv in (arm64, armhf, riscv):
        assert f"if=virtio,format=raw,file={disk}" in option_values(argv, "-drive") and "-snapshot" in argv


def test_the_real_firmware_table_names_debian_paths() -> None:
    def files(name: str) -> tuple[Path, Path | None]:
        found = arch(name).firmware("uefi")
        assert found is not None
        return found.code, found.variables

    assert files("amd64") == (Path("/usr/share/OVMF/OVMF_CODE_4M.fd"),
                              Path("/usr/share/OVMF/OVMF_VARS_4M.fd"))
    assert files("arm64") == (Path("/usr/share/AAVMF/AAVMF_CODE.fd"),
                              Path("/usr/share/AAVMF/AAVMF_VARS.fd"))


def test_a_missing_image_is_refused(tmp_path: Path, firmware: dict[str, Path]) -> None:
    with pytest.raises(BootTestError, match=r"no image to boot: .*/missing\.iso"):
        qemu_command(target(tmp_path / "missing.iso", "iso", "amd64", "bios"), tmp_path)


def test_arm64_has_no_bios_and_unknown_arches_are_refused(tmp_path: Path, firmware: dict[str, Path]) -> None:
    with pytest.raises(BootTestError, match="no bios firmware for arm64"):
        qemu_command(target(make_image(tmp_path / "x.iso"), "iso", "arm64", "bios"), tmp_path)
    with pytest.raises(BootTestError, match="does not support mips64el"):
        qemu_command(target(make_image(tmp_path / "x.iso"), "iso", "mips64el", "uefi"), tmp_path)
    with pytest.raises(BootTestError, match="no uefi firmware for riscv64"):
        qemu_command(target(make_image(tmp_path / "x.iso"), "iso", "riscv64", "uefi"), tmp_path)


# -- kvm_usable ----------------------------------------------------------------------


@pytest.fixture
def kvm_dev(tmp_path: Path) -> str:
    """A stand-in for /dev/kvm that can be opened read-write."""
    dev = tmp_path / "kvm"
    dev.write_bytes(b"")
    return str(dev)


def test_kvm_needs_the_cpu_flag_on_x86(kvm_dev: str) -> None:
    assert qemu.kvm_usable(arch("amd64"), INTEL, kvm_dev)
    assert qemu.kvm_usable(arch("amd64"), AMD, kvm_dev)
    # /dev/kvm without vmx/svm: guests hang (nested setups); emulate instead.
    assert not qemu.kvm_usable(arch("amd64"), MISSING_KVM_FLAGS, kvm_dev)
    assert not qemu.kvm_usable(arch("amd64"), "", kvm_dev)


def test_kvm_needs_a_device_that_opens_read_write(tmp_path: Path) -> None:
    assert not qemu.kvm_usable(arch("amd64"), INTEL, str(tmp_path / "missing"))
    # a directory does not open O_RDWR, even for root
    assert not qemu.kvm_usable(arch("amd64"), INTEL, str(tmp_path))


def test_kvm_needs_the_host_architecture(kvm_dev: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not qemu.kvm_usable(arch("arm64"), INTEL, kvm_dev)
    assert qemu.kvm_usable(arch("i386"), INTEL, kvm_dev)
    monkeypatch.setattr(architectures, "host", lambda: arch("arm64"))
    assert qemu.kvm_usable(arch("arm64"), "processor : 0\nFeatures : fp asimd\n", kvm_dev)  # no flag to check
    assert not qemu.kvm_usable(arch("amd64"), INTEL, kvm_dev)


def test_kvm_flag_must_be_a_whole_word(kvm_dev: str) -> None:
    assert not qemu.kvm_usable(arch("amd64"), MISSING_KVM_FLAGS.replace("sse ", "vmxnet svmx "), kvm_dev)


# -- reading transcripts -------------------------------------------------------------


def test_strip_ansi() -> None:
    raw = "\x1b[0;1;36;44mDebian\x1b[0m \x1b(0lqk\x1b(B live\r\r\n\x1b[?2004huser@debian:~$ \x1bM\rnext\x1b[5;11Hrow"
    assert transcript.strip_ansi(raw) == "Debian lqk live\nuser@debian:~$ \nnext\nrow"


def test_running() -> None:
    reading = read_console(console("running.txt"), finished=True, login_seconds=71.4)
    assert reading.verdict == "login prompt after 71 s; system running"
    assert reading.passed
    assert reading.system_state == "running"
    assert reading.failed_units == []
    assert reading.id_output == "uid=1000(user) gid=1000(user) groups=1000(user),27(sudo),100(users)"
    assert "boot=live" in reading.cmdline.split()
    assert reading.root_fstype == "overlay"
    assert classify(console("running.txt"), True) == "login prompt; system running"


def test_degraded_lists_the_failed_units_and_still_passes() -> None:
    reading = read_console(console("degraded.txt"), finished=True)
    assert reading.passed
    assert reading.system_state == "degraded"  # the kernel message in the middle of the output is skipped
    assert reading.failed_units == ["live-config.service", "systemd-networkd-wait-online.service"]
    assert reading.verdict == ("login prompt; system degraded; failed units: live-config.service, "
                               "systemd-networkd-wait-online.service")


def test_kernel_panic() -> None:
    assert classify(console("panic.txt"), finished=False) == (
        "kernel panic: VFS: Unable to mount root fs on unknown-block(0,0)")


def test_kernel_panic_from_its_end_line_alone() -> None:
    text = "[    2.1] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100 ]---\n"
    assert classify(text, False) == "kernel panic: Attempted to kill init! exitcode=0x00000100"


def test_kernel_oops() -> None:
    text = ("[   30.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
            "[   30.2] Oops: 0000 [#1] PREEMPT SMP NOPTI\n[   30.3] CPU: 1 PID: 321 Comm: modprobe\n")
    assert classify(text, False) == "kernel oops: Oops: 0000 [#1] PREEMPT SMP NOPTI"
    arm64 = "[   30.2] Internal error: Oops: 0000000096000004 [#1] SMP\n"
    assert classify(arm64, False) == "kernel oops: Internal error: Oops: 0000000096000004 [#1] SMP"


def test_initramfs_shell_names_the_reason() -> None:
    assert classify(console("initramfs.txt"), finished=False) == (
        "initramfs emergency shell: Unable to find a medium containing a live file system")


def test_systemd_emergency_mode_names_the_failed_unit() -> None:
    assert classify(console("emergency.txt"), finished=False) == (
        "systemd emergency mode after: Failed to mount boot-efi.mount - /boot/efi.")


def test_timeout_without_login_prompt() -> None:
    assert classify(console("hang.txt"), finished=False, timeout=600) == (
        "timeout after 600 s waiting for login prompt; "
        "last console line: [ ***  ] Job live-config.service/start running (16s / no limit)")
    assert classify(console("hang.txt"), finished=True).startswith("QEMU exited while waiting for login prompt; ")


def test_password_change_is_its_own_verdict() -> None:
    reading = read_console(console("password-change.txt"), finished=False)
    assert reading.verdict == "login prompt; password change required at login"
    assert not reading.passed


def test_stopped_in_the_middle_of_the_checks() -> None:
    text = console("running.txt")
    cut = text.index("VMDB-b57bb81f-state-begin\n") + len("VMDB-b57bb81f-state-begin\n")
    assert classify(text[:cut], False, timeout=900) == (
        "login prompt; timeout after 900 s waiting for `systemctl is-system-running --wait`")
    logged_in = text[:text.index("user@debian:~$ ") + len("user@debian:~$ ")]
    assert classify(logged_in, False) == "login prompt; timeout waiting for a shell prompt after logging in"


def test_a_state_other_than_running_or_degraded_fails() -> None:
    text = console("running.txt").replace("state-begin\nrunning\n", "state-begin\nmaintenance\n")
    reading = read_console(text, True)
    assert not reading.passed
    assert reading.verdict == "login prompt; system state: maintenance"


def test_the_earliest_failure_is_the_verdict() -> None:
    # Leaving the initramfs shell kills init: the shell is what went wrong first.
    text = console("initramfs.txt") + "exit\n[   99.1] Kernel panic - not syncing: Attempted to kill init!\n"
    assert classify(text, True).startswith("initramfs emergency shell")


def test_the_typed_commands_never_count_as_their_output() -> None:
    # Only the echo of a typed line, without what the shell prints: no output yet.
    text = "debian login: user\nuser@debian:~$ echo 'VMDB-0a1b'-state-begin; true; echo 'VMDB-0a1b'-state-end-$?\n"
    assert transcript.command_outputs(text) == {}


def test_firmware_that_finds_nothing_to_boot() -> None:
    assert classify(console("seabios-empty-disk.txt"), False) == (
        "firmware found nothing to boot: SeaBIOS: No bootable device.")
    assert classify(console("ovmf-empty-disk.txt"), False) == (
        'firmware found nothing to boot: UEFI shell after Boot0001 "UEFI QEMU DVD-ROM QM00005": Not Found; '
        'Boot0002 "UEFI Misc Device": Not Found')
    assert classify(console("aavmf-empty-disk-shell.txt"), False) == (
        'firmware found nothing to boot: UEFI shell after Boot0001 "UEFI Misc Device": Not Found')


def test_grub_rescue() -> None:
    text = "Welcome to GRUB!\n\nerror: unknown filesystem.\nEntering rescue mode...\ngrub rescue> "
    assert classify(text, False) == "GRUB rescue shell: Entering rescue mode..."


# -- boot_test against a fake QEMU ---------------------------------------------------


def test_boot_test_success(fake: Fake) -> None:
    result = fake.run()
    assert result.passed, result.verdict
    assert result.verdict.startswith("login prompt after ")
    assert result.verdict.endswith(" s; system running")
    assert result.seconds_to_login is not None and result.seconds_to_login < 30
    assert result.firmware == "bios"
    assert "poweroff" not in fake.typed  # stopped at the verdict, not shut down
    assert result.system_state == "running"
    assert "27(sudo)" in result.id_output
    assert "boot=live" in result.cmdline.split()
    assert result.root_fstype == "overlay"
    assert result.failed_units == []
    transcript = result.console_log.read_text()
    assert "debian login: user" in transcript
    assert "live" not in transcript.split("Password: ", 1)[1].split("\n", 1)[0]  # the password is never echoed
    assert fake.typed.startswith("user\rlive\r")
    fake.assert_gone()


def test_a_sudo_user_is_in_the_sudo_group_and_sudo_asks_for_the_password(fake: Fake) -> None:
    result = fake.run(sudo=True)
    assert result.passed, result.verdict
    assert result.verdict.endswith("; system running; sudo asks for the password")
    assert result.sudo_status == 1


def test_passwordless_sudo_fails_the_boot_test(fake: Fake) -> None:
    """What live-config's sudo component gives its live user (issue 22): never what we build."""
    for judged in (True, False):
        result = fake.run(sudo=judged, sudo_status=0)
        assert not result.passed
        assert "the user has passwordless sudo (`sudo -n true` succeeded)" in result.verdict


def test_a_sudo_user_outside_the_sudo_group_fails_the_boot_test(fake: Fake) -> None:
    result = fake.run(sudo=True, id="uid=1000(user) gid=1000(user) groups=1000(user),24(cdrom)")
    assert not result.passed
    assert result.verdict.endswith("the user is not in the sudo group (uid=1000(user) gid=1000(user) "
                                   "groups=1000(user),24(cdrom))")
    assert fake.run(sudo=False, id="uid=1000(user) gid=1000(user) groups=1000(user)").passed


def test_a_desktop_boot_checks_its_display_manager_and_keeps_a_screenshot(
        fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    """--boot-test-display (issue 24): QEMU gets a monitor; the screen is dumped until it has
    settled (two equal looks, not blank), then kept as PNG beside the transcript."""
    monkeypatch.setattr(boot_console, "SCREEN_POLL", 0.05)
    settling = [[0] * 6, [9, 8, 7, 6, 5, 4], [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]]
    result = fake.run(display=True, **{"display_manager": "active\nseat0\n", "screens": settling})
    assert result.passed, result.verdict
    assert result.verdict.endswith("; display manager active on seat0")
    assert result.display_manager == "active"
    assert result.screenshot == fake.work / "screen-amd64-bios.png"
    assert result.screenshot.read_bytes() == b"PNG" + bytes([1, 2, 3, 4, 5, 6])  # the settled screen
    assert not list(fake.work.glob("*.ppm"))  # the looks are not kept
    fake.assert_gone()


def test_a_desktop_without_its_display_manager_fails(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boot_console, "SCREEN_POLL", 0.05)
    monkeypatch.setattr(boot_console, "SCREEN_SETTLE", 0.3)  # a screen that never settles: taken anyway
    changing = [[0] * 6, [1] * 6, [2] * 6, [3] * 6] * 9
    result = fake.run(display=True, **{"display_manager": "failed\n", "screens": changing})
    assert not result.passed
    assert "; no desktop: display manager failed, seats: none" in result.verdict
    assert result.verdict.endswith("; nothing drawn on the screen within 0 s (see screen-amd64-bios.png)")
    assert result.screenshot is not None and result.screenshot.is_file()
    plain = fake.run()  # no display asked: nothing of it judged, no monitor
    assert plain.passed and plain.screenshot is None


def test_a_display_manager_that_draws_nothing_fails(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    """The X server's black screen with its cursor is no desktop, even with the display manager up."""
    monkeypatch.setattr(boot_console, "SCREEN_POLL", 0.05)
    monkeypatch.setattr(boot_console, "SCREEN_SETTLE", 0.3)
    result = fake.run(display=True, **{"display_manager": "active\nseat0\n", "screens": [[0] * 6] * 40})
    assert not result.passed
    assert "display manager active on seat0; nothing drawn on the screen" in result.verdict


def test_drawn_tells_a_desktop_from_a_black_screen_with_a_cursor() -> None:
    black = bytearray(640 * 480 * 3)
    assert not boot_console.drawn(bytes(black))
    for row in range(16):  # a 10x16 white cursor: 0.05% of the screen
        start = (row * 640 + 320) * 3
        black[start:start + 30] = b"\xff" * 30
    assert not boot_console.drawn(bytes(black))
    desktop = bytes(black[:640 * 400 * 3]) + b"\x30\x60\x90" * (640 * 80)  # a panel along the bottom
    assert boot_console.drawn(desktop)
    assert not boot_console.drawn(b"")


def test_a_display_boot_has_a_graphics_card_and_a_monitor(tmp_path: Path, firmware: dict[str, Path]) -> None:
    pc = qemu_command(target(make_image(tmp_path / "x.iso"), "iso", "amd64", "bios", display=True), tmp_path)
    assert option_values(pc, "-monitor") == [f"unix:{tmp_path}/monitor-amd64-bios.sock,server=on,wait=off"]
    assert "-nodefaults" not in pc  # the PC's default VGA stays
    arm = qemu_command(target(make_image(tmp_path / "y.iso"), "iso", "arm64", "uefi", display=True), tmp_path)
    assert "virtio-gpu-pci" in option_values(arm, "-device")
    plain = qemu_command(target(make_image(tmp_path / "z.iso"), "iso", "amd64", "bios"), tmp_path)
    assert option_values(plain, "-monitor") == ["none"]


def test_boot_test_degraded(fake: Fake) -> None:
    result = fake.run(state="degraded", failed=["foo.service", "bar.socket"], noise=True)
    assert result.passed
    assert result.system_state == "degraded"
    assert result.failed_units == ["foo.service", "bar.socket"]
    assert result.verdict.endswith("system degraded; failed units: foo.service, bar.socket")
    fake.assert_gone()


def test_the_verdict_says_why_each_unit_failed(fake: Fake) -> None:
    """make check, 2026-12-06: an emulated Pi came up degraded with systemd-sysctl.service
    failed, and nothing in the report said whether it had exited with an error or timed out."""
    result = fake.run(state="degraded", failed=["systemd-sysctl.service", "foo.service"],
                      why={"systemd-sysctl.service": "ExecMainStatus=1 Result=exit-code",
                           "foo.service": "Result=timeout ExecMainStatus=0"})
    assert result.passed and result.failed_units == ["systemd-sysctl.service", "foo.service"]
    assert result.verdict.endswith("failed units: systemd-sysctl.service (exit-code, status 1), "
                                   "foo.service (timeout)")


def test_a_login_that_ends_before_its_shell_is_tried_again(fake: Fake) -> None:
    """make check, 2026-12-06: the xfce guest's first session ended after its motd and getty
    asked again; the boot test then waited for a shell until its timeout."""
    result = fake.run(bounce=1)
    assert result.passed, result.verdict
    assert "a new login prompt instead of a shell 1 time;" in result.verdict
    assert result.id_output.startswith("uid=1000(user)")


def test_logins_that_keep_ending_fail_after_three_attempts(fake: Fake) -> None:
    result = fake.run(bounce=3)
    assert not result.passed
    assert "a new login prompt instead of a shell 3 times" in result.verdict
    assert "waiting for a shell prompt after logging in" in result.verdict


def test_boot_test_panic_fails_fast(fake: Fake) -> None:
    # the verdict is the panic, not the timeout: the test did not wait for the 600 s
    result = fake.run(timeout=600, boot=str(DATA / "panic.txt"), then="hang")
    assert not result.passed
    assert result.verdict == "kernel panic: VFS: Unable to mount root fs on unknown-block(0,0)"
    assert result.seconds_to_login is None
    assert "end Kernel panic" in result.console_log.read_text()
    fake.assert_gone()


def test_boot_test_initramfs_shell(fake: Fake) -> None:
    result = fake.run(timeout=60, boot=str(DATA / "initramfs.txt"), then="hang")
    assert result.verdict == "initramfs emergency shell: Unable to find a medium containing a live file system"
    fake.assert_gone()


def test_boot_test_timeout(fake: Fake) -> None:
    result = fake.run(timeout=2, boot=str(DATA / "hang.txt"), then="hang")
    assert not result.passed
    assert result.verdict.startswith("timeout after 2 s waiting for login prompt; last console line: [ ***  ] Job")
    assert result.console_log.read_text().startswith("Loading /live/vmlinuz... ok\n")
    fake.assert_gone()


def test_boot_test_kills_a_qemu_that_ignores_sigterm(fake: Fake) -> None:
    result = fake.run(timeout=1, boot=str(DATA / "hang.txt"), then="hang", ignore_sigterm=True)
    assert result.verdict.startswith("timeout after 1 s")
    fake.assert_gone()


def test_boot_test_stops_qemu_when_interrupted(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(boot_console, "_run_checks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fake.run()
    fake.assert_gone()


def test_boot_test_qemu_exiting_early(fake: Fake) -> None:
    text = fake.dir / "error.txt"
    text.write_text("qemu-system-x86_64: -drive if=virtio,format=raw,file=x: Could not open 'x': Permission denied\n")
    result = fake.run(boot=str(text), then="exit")
    assert result.verdict == ("QEMU exited while waiting for login prompt; last console line: qemu-system-x86_64: "
                              "-drive if=virtio,format=raw,file=x: Could not open 'x': Permission denied")
    fake.assert_gone()


def test_boot_test_seabios_finding_nothing(fake: Fake) -> None:
    result = fake.run(timeout=60, boot="", then="hang",
                      seabios=["Booting from DVD/CD...", "Boot failed: Could not read from CDROM (code 0003)",
                               "enter handle_18:", "No bootable device."])
    assert result.verdict == "firmware found nothing to boot: SeaBIOS: No bootable device."
    assert result.console_log.read_text() == (
        "SeaBIOS: Booting from DVD/CD...\nSeaBIOS: Boot failed: Could not read from CDROM (code 0003)\n"
        "SeaBIOS: No bootable device.\n")
    fake.assert_gone()


def test_a_stale_breakpoint_under_multi_threaded_tcg_is_booted_again_on_one_thread(fake: Fake) -> None:
    result = fake.run(multi_thread=str(DATA / "stale-breakpoint.txt"))
    assert result.passed, result.verdict
    assert result.verdict.endswith(" (second boot, on one TCG thread: the first stopped on kernel oops: "
                                   "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI, see console-amd64-bios.multi-thread.log)")
    assert "enqueue_timer" in (fake.work / "console-amd64-bios.multi-thread.log").read_text()
    assert "debian login: user" in result.console_log.read_text()
    fake.assert_gone()


def test_a_stale_breakpoint_on_one_thread_too_fails(fake: Fake) -> None:
    result = fake.run(boot=str(DATA / "stale-breakpoint.txt"), then="hang")
    assert not result.passed
    assert result.verdict.startswith("kernel oops: Oops: int3: 0000 [#1] PREEMPT SMP NOPTI (second boot, on one")
    fake.assert_gone()


def test_another_oops_is_not_booted_again(fake: Fake) -> None:
    oops = fake.dir / "oops.txt"
    oops.write_text("[    2.5] BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
                    "[    2.5] Oops: 0000 [#1] PREEMPT SMP NOPTI\n")
    result = fake.run(multi_thread=str(oops))
    assert result.verdict == "kernel oops: Oops: 0000 [#1] PREEMPT SMP NOPTI"
    assert not (fake.work / "console-amd64-bios.multi-thread.log").exists()
    fake.assert_gone()


def test_single_thread_tcg(tmp_path: Path, firmware: dict[str, Path]) -> None:
    argv = qemu_command(target(make_image(tmp_path / "x.iso"), "iso", "amd64", "bios"), tmp_path, single_thread=True)
    assert option_values(argv, "-accel") == ["tcg,thread=single"]
    assert option_values(argv, "-smp") == ["2"]


def test_boot_test_types_the_grub_keys_at_the_menu(fake: Fake) -> None:
    result = fake.run(menu=True, grub_entry_keys="\x1b[B\r")
    assert result.passed
    assert fake.typed.startswith("\x1b[B\ruser\r")
    fake.assert_gone()


def test_boot_test_forced_password_change(fake: Fake) -> None:
    result = fake.run(password_change=True)
    assert not result.passed
    assert result.verdict.endswith("; password change required at login")
    assert result.seconds_to_login is not None
    fake.assert_gone()


def test_boot_test_wrong_password(fake: Fake) -> None:
    result = fake.run(password="other")
    assert not result.passed
    assert result.verdict.endswith("; login incorrect")
    fake.assert_gone()


def test_boot_test_stops_qemu_at_its_verdict(fake: Fake) -> None:
    """The checks done, QEMU is stopped at once: no poweroff is awaited (issue 17)."""
    result = fake.run()
    assert result.passed
    assert result.verdict.endswith("; system running")
    assert "poweroff" not in fake.typed
    fake.assert_gone()  # stopped by us: the fake guest never powers off


def test_boot_test_names_the_package_of_a_missing_emulator(tmp_path: Path, firmware: dict[str, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    amd64 = arch("amd64")
    assert amd64.emulator is not None
    missing = dataclasses.replace(amd64.emulator, binary="qemu-system-nonexistent")
    monkeypatch.setitem(architectures.ARCHITECTURES, "amd64", dataclasses.replace(amd64, emulator=missing))
    with pytest.raises(BootTestError, match=r"qemu-system-nonexistent not found \(apt-get install qemu-system-x86\)"):
        boot_console.boot_test(target(make_image(tmp_path / "x.iso"), "iso", "amd64", "bios"), "user", "live",
                           tmp_path / "work", kvm=False)


# -- host packages -------------------------------------------------------------------


def test_boot_test_packages() -> None:
    assert hostdeps.boot_test_packages(arch("amd64")) == ["qemu-system-x86", "ovmf"]
    assert hostdeps.boot_test_packages(arch("arm64")) == ["qemu-system-arm", "fdisk", "mtools", "qemu-utils",
                                                          "qemu-efi-aarch64", "u-boot-qemu"]
    assert hostdeps.boot_test_packages(arch("mips64el")) == []


def test_the_installer_list_has_the_boot_test_packages_and_a_build_does_not(make_settings: MakeSettings) -> None:
    everything = hostdeps.host_packages()
    assert {"qemu-system-x86", "ovmf", "qemu-system-arm", "qemu-efi-aarch64", "qemu-system-misc", "u-boot-qemu",
            "opensbi"} <= set(everything)
    assert "ovmf" not in hostdeps.host_packages(make_settings())


def test_an_escape_sequence_cut_by_a_read_is_removed_whole() -> None:
    """forky's shell writes an OSC 3008 context (systemd 258) before each command's output; a
    read may end inside it.  Its text must not stay, nor hide the marker after it."""
    stream = io.StringIO()
    console = boot_console._Console(None, stream)  # type: ignore[arg-type]  # _feed reads no child
    context = "\x1b]3008;start=" + "f" * 36 + ";type=command;machineid=" + "1" * 32 + ";user=user;hostname=forky"
    console._feed("user@forky:~$ echo 'VMDB-1'-state-begin; systemctl is-system-running\r\n" + context[:120])
    console._feed(context[120:] + "\x1b\\VMDB-1-state-begin\r\nrunning\r\nVMDB-1-state-end-0\r\n")
    assert "3008" not in console.text
    assert "\nVMDB-1-state-begin\nrunning\nVMDB-1-state-end-0\n" in console.text
    assert stream.getvalue() == console.text
