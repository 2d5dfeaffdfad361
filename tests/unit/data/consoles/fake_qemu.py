"""A stand-in for qemu-system-*: plays a recorded console and answers like a Debian guest.

Called with the argv qemu.qemu_command() builds.  The "image" (the -cdrom
file) is a JSON scenario:

  boot          transcript file printed first (with "then": "login", up to its first login prompt)
  then          "login": answer the login and the checks; "hang": print all of boot, then hang;
                "exit": print all of boot, then exit with status 1 (QEMU failing to start)
  menu          print a GRUB menu first and read keys until a carriage return
  user, password, state, failed, id, cmdline, rootfs, secureboot   what the guest answers
  sudo_status   the exit status of `sudo -n true` (default 1: a password is required)
  display_manager   what `systemctl is-active display-manager.service; loginctl list-seats` prints
  screens       with -monitor unix:PATH: the screens screendump writes, one per call (the last one
                repeats); each a list of pixel bytes, written as a 2x1 PPM or as "PNG" + bytes
  password_change   ask for a new password after logging in (and wait forever)
  bounce        how many logins end before their shell, with a new login prompt
  noise         print a kernel message in the middle of the state output
  seabios       lines written to the SeaBIOS debug log (-chardev file,id=firmware,path=...)
  ignore_sigterm    a QEMU that must be killed
  record        file receiving every byte read from the console, for the test to read
  pidfile       file receiving this process's pid
  multi_thread  transcript printed (then hang) instead of ``boot`` unless called with
                ``-accel tcg,thread=single``: a guest that oopses only under multi-threaded TCG

The console is put into raw mode as QEMU does, so this program echoes what it reads
and writes \\r\\n line ends itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import termios
import threading
import tty
from pathlib import Path

MARKED = re.compile(r"^echo '(?P<tag>VMDB-[0-9a-f]+)'-(?P<name>[a-z]+)-begin; (?P<command>.*); "
                    r"echo '(?P=tag)'-(?P=name)-end-\$\?$")
LOGIN = re.compile(r"(?m)^\S+ login: ")


class Guest:
    def __init__(self, scenario: dict[str, object]) -> None:
        self.scenario = scenario
        self.record = open(str(scenario["record"]), "ab", buffering=0)  # open as long as the process lives
        self.bounced = 0

    def write(self, text: str) -> None:
        os.write(1, text.replace("\r\n", "\n").replace("\n", "\r\n").encode())

    def read_line(self, echo: bool = True) -> str:
        line = b""
        while True:
            byte = os.read(0, 1)
            if not byte:
                sys.exit(0)
            self.record.write(byte)
            if byte in (b"\r", b"\n"):
                if echo:
                    self.write("\n")
                return line.decode()
            line += byte
            if echo:
                os.write(1, byte)

    def hang(self) -> None:
        while True:
            signal.pause()

    def menu(self) -> None:
        self.write("\x1b[2J\x1b[H\x1b[0;30;47m                             GNU GRUB  version 2.06\x1b[0m\n\n"
                   " +------------------------------------------------------------+\n"
                   " |*Debian live (bookworm amd64)                                |\n"
                   " | Debian live (bookworm amd64), serial console               |\n"
                   " +------------------------------------------------------------+\n\n"
                   "      Use the ^ and v keys to select which entry is highlighted.\n"
                   "      Press enter to boot the selected OS, `e' to edit the commands\n"
                   "      before booting or `c' for a command-line.\n")
        self.read_line(echo=False)

    def login(self) -> None:
        while True:
            user = self.read_line()
            self.write("Password: ")
            password = self.read_line(echo=False)
            if user == self.scenario.get("user", "user") and password == self.scenario.get("password", "live"):
                if self.bounced < int(str(self.scenario.get("bounce", 0))):
                    self.bounced += 1  # the session ends before its shell: getty asks again
                    self.write("\nLinux debian 6.12.117+deb13-amd64 #1 SMP\n\n\nDebian GNU/Linux 13 debian ttyS0\n\n"
                               "debian login: ")
                    continue
                break
            self.write("\nLogin incorrect\ndebian login: ")
        if self.scenario.get("password_change"):
            self.write("\nYou are required to change your password immediately (administrator enforced).\n"
                       "Changing password for user.\nCurrent password: ")
            self.hang()
        self.write("Linux debian 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22) x86_64\n\n"
                   "The programs included with the Debian GNU/Linux system are free software;\n\n"
                   "\x1b[?2004h\x1b[01;32muser@debian\x1b[00m:\x1b[01;34m~\x1b[00m$ ")

    def answer(self, command: str) -> tuple[str, int]:
        """What the guest prints for ``command``, and its exit status."""
        if command == "sudo -n true":
            status = int(str(self.scenario.get("sudo_status", 1)))
            return ("sudo: a password is required\n" if status else ""), status
        output = self.output(command)
        return output, 127 if output.endswith(": command not found\n") else 0

    def output(self, command: str) -> str:
        scenario = self.scenario
        if command.startswith("systemctl is-system-running"):
            noise = "[   81.234567] random: crng init done\n" if scenario.get("noise") else ""
            return noise + str(scenario.get("state", "running")) + "\n"
        if command.startswith("systemctl --failed"):
            failed = scenario.get("failed", [])
            assert isinstance(failed, list)
            return "".join(f"{unit} loaded failed failed {unit}\n" for unit in failed)
        if command.startswith("for unit in $(systemctl --failed"):
            why = scenario.get("why", {})
            assert isinstance(why, dict)
            return "".join(f"{unit} {fields}\n" for unit, fields in why.items())
        if command.startswith("systemctl is-active display-manager.service"):
            return str(scenario.get("display_manager", "inactive\n"))
        if command == "id":
            return str(scenario.get("id", "uid=1000(user) gid=1000(user) groups=1000(user),27(sudo)")) + "\n"
        if command == "cat /proc/cmdline":
            return str(scenario.get("cmdline", "BOOT_IMAGE=/live/vmlinuz boot=live components console=ttyS0")) + "\n"
        if command.startswith("findmnt"):
            return str(scenario.get("rootfs", "overlay")) + "\n"
        if command.startswith("od -An -tx1 /sys/firmware/efi/efivars/SecureBoot-"):
            return str(scenario.get("secureboot", "od: /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-"
                                                  "00e098032b8c: No such file or directory\n[none] integrity "
                                                  "confidentiality\n"))
        return f"-bash: {command.split(maxsplit=1)[0]}: command not found\n"

    def shell(self) -> None:
        while True:
            line = self.read_line()
            if marked := MARKED.match(line):
                tag, name = marked["tag"], marked["name"]
                output, status = self.answer(marked["command"])
                self.write(f"{tag}-{name}-begin\n{output}{tag}-{name}-end-{status}\n")
            self.write("user@debian:~$ ")


def serve_monitor(path: str, screens: list[list[int]]) -> None:
    """QEMU's human monitor on a unix socket: a prompt, and screendump FILE -f FORMAT."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    dumped = 0

    def serve() -> None:
        nonlocal dumped
        while True:
            connection, _ = server.accept()
            with connection:
                connection.sendall(b"QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) ")
                request = b""
                while not request.endswith(b"\n"):
                    request += connection.recv(1024)
                words = request.decode().split()
                if words[:1] == ["screendump"]:
                    pixels = bytes(screens[min(dumped, len(screens) - 1)])
                    dumped += 1
                    data = b"P6\n2 1\n255\n" + pixels if words[-1] == "ppm" else b"PNG" + pixels
                    Path(words[1]).write_bytes(data)
                connection.sendall(b"\r\n(qemu) ")

    threading.Thread(target=serve, daemon=True).start()


def main() -> None:
    argv = sys.argv[1:]
    scenario = json.loads(Path(argv[argv.index("-cdrom") + 1]).read_text())
    Path(str(scenario["pidfile"])).write_text(str(os.getpid()))
    if scenario.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.isatty(0):
        tty.setraw(0, termios.TCSANOW)
    guest = Guest(scenario)
    monitor = argv[argv.index("-monitor") + 1]
    if monitor.startswith("unix:"):
        serve_monitor(monitor.removeprefix("unix:").split(",server")[0], scenario.get("screens", [[0] * 6]))
    if scenario.get("seabios"):
        chardev = next(a for a in argv if a.startswith("file,id=firmware,path="))
        Path(chardev.split("path=", 1)[1]).write_text("".join(f"{line}\n" for line in scenario["seabios"]))
    if scenario.get("menu"):
        guest.menu()
    boot = Path(str(scenario["boot"])).read_text() if scenario.get("boot") else ""
    then = scenario.get("then", "login")
    if scenario.get("multi_thread") and argv[argv.index("-accel") + 1] != "tcg,thread=single":
        boot, then = Path(str(scenario["multi_thread"])).read_text(), "hang"
    if then != "login":
        guest.write(boot)
        if then == "exit":
            sys.exit(1)
        guest.hang()
    prompt = LOGIN.search(boot)
    assert prompt, "a login scenario needs a transcript with a login prompt"
    guest.write(boot[:prompt.end()])
    guest.login()
    guest.shell()


if __name__ == "__main__":
    main()
