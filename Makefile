# vmdebootstrap 2 -- the two commands of the README:
#   make live    installs everything and builds the default live image (examples/live.conf)
#   make check   installs everything and runs every test tier (what .ci/run calls)

PYTHON  ?= /usr/bin/python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export DEBIAN_FRONTEND := noninteractive

.PHONY: install test-tools host-packages binfmt live check lint unit integration faults man completion clean benchmark

install: host-packages binfmt $(STAMP)
	ln -sf $(CURDIR)/$(BIN)/vmdebootstrap /usr/local/sbin/vmdebootstrap
	ln -sf $(CURDIR)/$(BIN)/vmdebootstrap-matrix /usr/local/bin/vmdebootstrap-matrix
	install -D -m 644 doc/completion/vmdebootstrap /usr/local/share/bash-completion/completions/vmdebootstrap

# Foreign --arch builds run the target's programs through qemu-user: binfmt_misc
# must be mounted and the handlers of qemu-user-static enabled.
binfmt: host-packages
	mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	update-binfmts --enable

# The host packages come from the one list the tool's own preflight reads
# (vmdebootstrap/hostdeps.py), and the installer's and test suite's own (tests/host-packages).
host-packages:
	@test "$$(id -u)" = 0 || { echo "make: run as root (the build needs it)"; exit 1; }
	apt-get update -q
	tools="$$($(PYTHON) -m vmdebootstrap.hostdeps)" && \
	apt-get install -y -q --no-install-recommends $$tools $$(grep -v '^#' tests/host-packages)

# The test suite's own tool from npm: gitlab-ci-local runs the pipeline vmdebootstrap-matrix
# writes (tests/pipeline).  Pinned: 4.74 and later crash on Node 20 ("kW.union is not a function").
GITLAB_CI_LOCAL := 4.73.0
test-tools: host-packages
	command -v npm >/dev/null || apt-get install -y -q --no-install-recommends nodejs npm
	test "$$(gitlab-ci-local --version 2>/dev/null)" = "$(GITLAB_CI_LOCAL)" || \
	    npm install -g --no-fund --no-audit gitlab-ci-local@$(GITLAB_CI_LOCAL)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# LIVE_OPTIONS: more options for that build (tests/trixie_host gives its guests longer to boot).
LIVE_OPTIONS ?=
live: install
	$(BIN)/vmdebootstrap --config examples/live.conf $(LIVE_OPTIONS)

lint: $(STAMP)
	$(BIN)/ruff check vmdebootstrap tests benchmarks/run
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# The integration and boot tiers run together so that each image is built once and both
# tiers read it.  Beside the main session run ten more, each printed after it: the xfce
# flavour (tests/integration/test_flavours.py: its build, Calamares' offline repository,
# its boot to the display manager), the boards in three sessions (tests/integration/test_boards.py:
# the arm64 u-boot image; the Raspberry Pi image; the BeagleBone and riscv64 images; each built
# under emulation, its layout checked and booted), the
# two arm64 builds under qemu-user emulation (the live ISO and the disk image: each
# mostly one busy core for a quarter of an hour, with their boot tests), the fault
# campaign (tests/faults: some fifty small builds made to fail or interrupted at every
# step, two at a time) and after it the amd64 disk images (BIOS, UEFI, extlinux), the trixie
# host (tests/trixie_host: the tool installed on a Debian 13 root, its unit tier and `make live`
# there), the Debian package (tests/package: built, lintian-clean, installed with apt, a live
# ISO built and booted by /usr/sbin/vmdebootstrap, purged) and after it the other releases'
# ISOs (bookworm, forky, sid, i386), and a matrix's GitLab CI pipeline (tests/pipeline: the
# file vmdebootstrap-matrix writes, run job by job by gitlab-ci-local: two minbase builds, a
# live ISO and its boot job, the summary).  The images and releases sessions follow shorter
# ones instead of running beside everything: on two cores the main session's length is make
# check's, and more sessions at once starve the guests booting beside them
# (docs/performance.md).  Any session failing fails the target; each prints its duration.
SLOW_LOG := .pytest-slow.log
SLOW_IMAGE_LOG := .pytest-slow-image.log
FAULTS_LOG := .pytest-faults.log
IMAGES_LOG := .pytest-images.log
TRIXIE_HOST_LOG := .pytest-trixie-host.log
PACKAGE_LOG := .pytest-package.log
RELEASES_LOG := .pytest-releases.log
PIPELINE_LOG := .pytest-pipeline.log
FLAVOURS_LOG := .pytest-flavours.log
BOARDS_ARM64_LOG := .pytest-boards-arm64.log
BOARDS_RASPI_LOG := .pytest-boards-raspi.log
BOARDS_OTHER_LOG := .pytest-boards-armhf-riscv64.log
# Each session's wall time and the CPU time of all its processes (GNU time) end its log, and
# pytest lists its slowest tests: where make check's minutes go (docs/performance.md).
TIME_FORMAT := session time: %e s wall, %U s user, %S s system CPU
SESSION := session() { log=$$1; shift; /usr/bin/time -f "$(TIME_FORMAT)" -o $$log.time "$$@" > $$log 2>&1; \
	rc=$$?; cat $$log.time >> $$log; rm -f $$log.time; return $$rc; }; session
PYTEST_SESSION := -v --durations=15
INTEGRATION := $(BIN)/pytest $(PYTEST_SESSION) tests/integration tests/boot
integration: install test-tools
	@$(SESSION) $(SLOW_LOG) $(INTEGRATION) -m "slow" & slow=$$!; \
	$(SESSION) $(FLAVOURS_LOG) $(INTEGRATION) -m "flavours" & flavours=$$!; \
	$(SESSION) $(BOARDS_ARM64_LOG) $(INTEGRATION) -s -m "boards_arm64" & boards=$$!; \
	$(SESSION) $(BOARDS_RASPI_LOG) $(INTEGRATION) -s -m "boards_raspi" & raspi=$$!; \
	$(SESSION) $(BOARDS_OTHER_LOG) $(INTEGRATION) -s -m "boards_armhf_riscv64" & others=$$!; \
	$(SESSION) $(SLOW_IMAGE_LOG) $(INTEGRATION) -m "slow_image" & image=$$!; \
	{ $(SESSION) $(FAULTS_LOG) nice -n 10 $(BIN)/pytest $(PYTEST_SESSION) -s -m "faults" tests/faults; \
	  echo $$? > $(FAULTS_LOG).rc; $(SESSION) $(IMAGES_LOG) $(INTEGRATION) -m "images and not slow_image"; } & images=$$!; \
	$(SESSION) $(TRIXIE_HOST_LOG) $(BIN)/pytest $(PYTEST_SESSION) -s -m "trixie_host" tests/trixie_host & trixie=$$!; \
	{ $(SESSION) $(PACKAGE_LOG) $(BIN)/pytest $(PYTEST_SESSION) -s -m "package" tests/package; \
	  echo $$? > $(PACKAGE_LOG).rc; $(SESSION) $(RELEASES_LOG) $(INTEGRATION) -m "releases"; } & releases=$$!; \
	$(SESSION) $(PIPELINE_LOG) $(BIN)/pytest $(PYTEST_SESSION) -s -m "pipeline" tests/pipeline & pipeline=$$!; \
	/usr/bin/time -f "$(TIME_FORMAT)" $(INTEGRATION) -m "(integration or boot) and not slow and not slow_image \
	    and not flavours and not boards_arm64 and not boards_raspi and not boards_armhf_riscv64 and not images \
	    and not releases"; \
	fast=$$?; wait $$slow; slowrc=$$?; wait $$flavours; flavoursrc=$$?; wait $$image; imagerc=$$?; \
	wait $$boards; boardsrc=$$?; wait $$raspi; raspirc=$$?; wait $$others; othersrc=$$?; \
	wait $$images; imagesrc=$$?; faultsrc=$$(cat $(FAULTS_LOG).rc); \
	wait $$trixie; trixierc=$$?; wait $$releases; releasesrc=$$?; packagerc=$$(cat $(PACKAGE_LOG).rc); \
	wait $$pipeline; pipelinerc=$$?; rm -f $(FAULTS_LOG).rc $(PACKAGE_LOG).rc; \
	echo "==== session: arm64 live ISO (emulated) ===="; cat $(SLOW_LOG); \
	echo "==== session: xfce flavour ===="; cat $(FLAVOURS_LOG); \
	echo "==== session: arm64 disk image (emulated) ===="; cat $(SLOW_IMAGE_LOG); \
	echo "==== session: boards, arm64 u-boot (emulated) ===="; cat $(BOARDS_ARM64_LOG); \
	echo "==== session: boards, Raspberry Pi (emulated) ===="; cat $(BOARDS_RASPI_LOG); \
	echo "==== session: boards, armhf and riscv64 (emulated) ===="; cat $(BOARDS_OTHER_LOG); \
	echo "==== session: fault campaign ===="; cat $(FAULTS_LOG); \
	echo "==== session: amd64 disk images (after the fault campaign) ===="; cat $(IMAGES_LOG); \
	echo "==== session: trixie host ===="; cat $(TRIXIE_HOST_LOG); \
	echo "==== session: Debian package ===="; cat $(PACKAGE_LOG); \
	echo "==== session: other releases (after the Debian package) ===="; cat $(RELEASES_LOG); \
	echo "==== session: GitLab pipeline of a matrix ===="; cat $(PIPELINE_LOG); \
	echo "integration+boot: main $$fast, arm64 ISO $$slowrc, xfce $$flavoursrc, arm64 image $$imagerc," \
	     "boards arm64 $$boardsrc, Raspberry Pi $$raspirc, boards armhf+riscv64 $$othersrc," \
	     "faults $$faultsrc, amd64 images $$imagesrc, trixie host $$trixierc, package $$packagerc," \
	     "releases $$releasesrc, pipeline $$pipelinerc"; \
	test $$fast = 0 && test $$slowrc = 0 && test $$flavoursrc = 0 && test $$imagerc = 0 && test $$faultsrc = 0 \
	     && test $$boardsrc = 0 && test $$raspirc = 0 && test $$othersrc = 0 && test $$imagesrc = 0 \
	     && test $$trixierc = 0 && test $$packagerc = 0 && test $$releasesrc = 0 && test $$pipelinerc = 0

# The fault campaign alone: prints its table of step x fault -> outcome.
faults: install
	$(BIN)/python -m tests.faults.campaign

check: install lint unit integration

man: $(STAMP)
	$(BIN)/python -m vmdebootstrap.manpage > doc/vmdebootstrap.8
	$(BIN)/python -m vmdebootstrap.matrix.manual > doc/vmdebootstrap-matrix.1

completion: $(STAMP)
	$(BIN)/python -m vmdebootstrap.completion bash > doc/completion/vmdebootstrap
	$(BIN)/python -m vmdebootstrap.completion zsh > doc/completion/_vmdebootstrap

clean:
	rm -rf $(VENV) output .pytest_cache .mypy_cache .ruff_cache

# Issue 8's comparison with live-build and mmdebstrap+mksquashfs (about an hour with
# three runs each; docs/performance.md).  Not part of `make check`: timings are no test.
benchmark: install
	benchmarks/run
