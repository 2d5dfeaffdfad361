"""Booting what was built in QEMU and logging in over the serial console.

    check.py       the boot check of a build (--boot-test, --boot-test-only): each
                   firmware booted, the results judged against the settings and reported
    console.py     one boot test: QEMU started, the serial console driven, QEMU stopped
    qemu.py        the emulated machine: QEMU's command line, KVM or TCG, the firmware
    raspi.py       a Raspberry Pi image on QEMU's raspi3b: the files its firmware would load
    transcript.py  the verdict on a console transcript (pure: recorded ones test it)
"""
