"""Porting a student's source tree: build it with its own Makefile, with the
conformance programs (build/kt-user.o) linked in place of its user program,
without editing a single file of it (docs/judging.md, "Porting a tree").

Untrusted code: the Makefile runs in a build jail (harness.jail; docs/
grading.md, "Threat model and jails"): an unprivileged uid of its own, no
capabilities, fresh namespaces, a clean environment, only /usr and its own
tmpfs visible, bounded in disk (in total), processes, CPU and time; every
process of it dead when port_tree returns. Where no jail can be made the
build is refused unless ``unsafe`` (--unsafe-no-sandbox).

How: the tree is copied (the student's folder is never written), and its
Makefile is run with the cross toolchain replaced by wrappers: a directory
of scripts named like the real tools (``aarch64-linux-gnu-gcc``, ``-ld``,
..., and the same under ``aarch64-none-elf-`` and ``aarch64-elf-``), put
first on PATH and passed as every prefix variable teaching trees use
(``ARMGNU``, ``CROSS_COMPILE``, ``CROSS``, ``TOOLCHAIN``, ``PREFIX``).
Every tool call goes through to the real tool, except a final link (``ld``
without ``-r``, or ``gcc`` without ``-c``/``-S``/``-E``): there the wrapper
finds the one input object that defines ``user_process`` (or the
``entry`` that --entry names; kt-user.o's is then renamed), weakens that
symbol (``objcopy --weaken-symbol``), merges kt-user.o into it (``ld -r``,
keeping the object's file name, so a linker script that picks user code by
file name still does), and links with the merged object instead. If the
tree keeps its user program in sections named ``.text.<x>`` (lesson 6's
``.text.user``), kt-user.o's sections are renamed to match.

What a tree needs: a Makefile whose default target builds ``kernel8.img``
with the cross tools named through one of those variables or found on
PATH, and a global function ``user_process`` (the lesson's name) in an
object file of the final link.
"""

from __future__ import annotations

import io
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import jail
from .errors import HarnessError

TRIPLET = "aarch64-linux-gnu-"
#: Every prefix a teaching tree may name its cross tools by: each gets the
#: same wrappers (to the installed TRIPLET tools), so a Makefile that
#: hard-codes ``aarch64-none-elf-gcc`` or sets ``ARMGNU=aarch64-elf`` builds.
PREFIXES = (TRIPLET, "aarch64-none-elf-", "aarch64-elf-")
TOOLS = ("gcc", "cc", "cpp", "as", "ld", "ld.bfd", "objcopy", "objdump", "nm", "ar", "readelf",
         "strip", "size", "ranlib")
_DRIVER_NOT_LINKING = "-c|-S|-E|-M|-MM|-r|--version|-v|--help|-dump*|-print-*|--print-*|-###"
_LD_NOT_LINKING = "-r|-i|--relocatable|--version|-v|-V|--help"
#: The tools that can make the final link, and the arguments (shell case
#: patterns) that say a call is not one: such a call goes straight through.
NOT_A_LINK = {"gcc": _DRIVER_NOT_LINKING, "cc": _DRIVER_NOT_LINKING,
              "ld": _LD_NOT_LINKING, "ld.bfd": _LD_NOT_LINKING}
PREFIX_VARS = ("ARMGNU", "CROSS_COMPILE", "CROSS", "TOOLCHAIN", "PREFIX")  #: ARMGNU wants no '-'
ENTRY = "user_process"  #: the user program's function, unless --entry names another
SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  #: what --entry accepts (it goes into a shell script)
ENTRY_FILE = "entry"  #: in the build jail's kt/ folder: the --entry symbol
BUILD_TIMEOUT = 120.0  #: seconds a student's build may take
IMAGE_NAME = "kernel8.img"
SKIP = shutil.ignore_patterns(".git", "build", "*.o", "*.elf", "*.img", "__pycache__")
ERROR_FILE = "port-error.txt"  #: where the link wrapper explains a refusal
LINKED_FILE = "port-linked.txt"  #: where the link wrapper notes the path of the ELF it linked


class PortError(HarnessError):
    """The tree could not be turned into a judgeable image."""


class BuildFailed(PortError):
    """The tree's own build failed (its log's tail is the console)."""


class NoUserProgram(PortError):
    """No object of the final link defines user_process."""


class NoImage(PortError):
    """The build succeeded but made no kernel8.img."""


@dataclass(frozen=True)
class Ported:
    """A ported tree: the image to boot and the log of its build."""

    image: Path
    log: Path
    seconds: float
    elf: Path | None = None  #: the ELF of the final link, beside the image (harness.boot)


#: Limits on a student's build (its Makefile is untrusted): CPU seconds,
#: address space, size of any file it writes, processes.
LIMITS = {resource.RLIMIT_CPU: 300, resource.RLIMIT_AS: 2 << 30, resource.RLIMIT_FSIZE: 256 << 20,
          resource.RLIMIT_NPROC: 512}


def _limits() -> None:
    """preexec_fn of the build: the LIMITS (soft = hard)."""
    for which, value in LIMITS.items():
        resource.setrlimit(which, (value, value))


def _bwrap_works() -> bool:
    """Whether a build jail can be made here (harness.jail.unavailable)."""
    return jail.unavailable() is None


def _real_tool(tool: str) -> str:
    found = shutil.which(TRIPLET + tool)
    if found is None:
        raise PortError(f"the cross tool {TRIPLET}{tool} is not installed (apt-get install "
                        f"gcc-aarch64-linux-gnu)")
    return found


def _write_wrappers(wrap: Path, kt_user: Path, entry: str = ENTRY) -> None:
    """The wrapper scripts (module docstring), under every prefix of
    PREFIXES; the link ones call ``link`` with ``entry``."""
    if not SYMBOL.fullmatch(entry):
        raise PortError(f"--entry {entry!r}: not a C identifier")
    wrap.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[1]
    for tool in TOOLS:
        real = shutil.which(TRIPLET + tool)
        if real is None:
            continue
        lines = ["#!/bin/sh", f"# kt port wrapper for {real}"]
        if tool in NOT_A_LINK:
            lines += ['for a in "$@"; do', f'  case "$a" in {NOT_A_LINK[tool]}) exec "{real}" "$@";; esac', "done",
                      f'PYTHONPATH="{root}" exec "{sys.executable}" -m harness.port link "{real}" '
                      f'"{kt_user}" "{wrap / ERROR_FILE}" "{entry}" "$@"']
        else:
            lines.append(f'exec "{real}" "$@"')
        for prefix in PREFIXES:
            script = wrap / (prefix + tool)
            script.write_text("\n".join(lines) + "\n")
            script.chmod(0o755)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _definers(objects: list[str], entry: str = ENTRY, types: tuple[str, ...] = ("T", "W")) -> list[str]:
    """The objects among ``objects`` that define the global ``entry`` (with
    ``types=("t",)``: a static one)."""
    nm = _real_tool("nm")
    found = []
    for obj in objects:
        out = _run([nm, "--defined-only", obj]).stdout
        if any(line.split()[-2:] in ([t, entry] for t in types) for line in out.splitlines()
               if len(line.split()) >= 2):
            found.append(obj)
    return found


def _section_of(obj: str, entry: str = ENTRY) -> str:
    """The section ``entry`` is defined in (e.g. ``.text``, ``.text.user``)."""
    for line in _run([_real_tool("objdump"), "-t", obj]).stdout.splitlines():
        parts = line.split()
        if parts and parts[-1] == entry and len(parts) >= 4:
            return parts[-3]
    return ".text"


def _merge(obj: str, kt_user: str, tmp: Path, entry: str = ENTRY) -> Path:
    """A copy of ``obj`` with ``entry`` weakened and kt-user.o (its
    user_process renamed ``entry``) merged in, under the same file name in ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    weak, kt = tmp / "weak.o", tmp / "kt-user.o"
    steps = [[_real_tool("objcopy"), f"--weaken-symbol={entry}", obj, str(weak)]]
    section = _section_of(obj, entry)
    suffix = section[len(".text"):] if section.startswith(".text.") and section != f".text.{entry}" else ""
    renames = [f"--rename-section=.{s}=.{s}{suffix}" for s in ("text", "rodata", "data", "bss")] if suffix else []
    if entry != ENTRY:
        renames.append(f"--redefine-sym={ENTRY}={entry}")
    steps.append([_real_tool("objcopy"), *renames, kt_user, str(kt)])
    merged = tmp / Path(obj).name
    steps.append([_real_tool("ld"), "-r", "-o", str(merged), str(weak), str(kt)])
    for step in steps:
        done = _run(step)
        if done.returncode != 0:
            raise PortError(f"kt port: `{' '.join(step)}` failed: {done.stderr.strip()}")
    return merged


def link(real: str, kt_user: str, error_file: str, args: list[str], entry: str = ENTRY) -> int:
    """The link wrapper: substitute the merged object, then run ``real``."""
    objects = [a for i, a in enumerate(args) if a.endswith(".o") and not a.startswith("-")
               and (i == 0 or args[i - 1] != "-o") and os.path.isfile(a)]
    if not objects:  # a probe (a Makefile asking the linker what it supports), not a link
        return subprocess.run([real, *args], check=False).returncode
    definers = _definers(objects, entry)
    static = [] if definers else _definers(objects, entry, ("t",))
    if len(definers) != 1:
        why = (f"{entry}() is a static function (in {static[0]}): a static function cannot be "
               f"weakened and replaced; make it global (drop `static`) to be graded" if static
               else f"no object file of the final link defines a global function {entry}() "
               f"(objects: {' '.join(objects) or 'none'})" if not definers
               else f"{len(definers)} objects define {entry}: {' '.join(definers)}")
        Path(error_file).write_text(why + "\n")
        print(f"kt port: {why}", file=sys.stderr)
        return 1
    try:
        merged = _merge(definers[0], kt_user, Path(error_file).parent / f"link-{os.getpid()}", entry)
    except PortError as e:
        Path(error_file).write_text(f"{e}\n")
        print(e, file=sys.stderr)
        return 1
    new_args = [str(merged) if a == definers[0] else a for a in args]
    code = subprocess.run([real, *new_args], check=False).returncode
    if code == 0:  # the ELF the image is made from: harness.boot reads its load address and entry
        Path(error_file).with_name(LINKED_FILE).write_text(os.path.abspath(_link_output(args)) + "\n")
    return code


def _link_output(args: list[str]) -> str:
    """The file a link command line writes (``-o X``, ``-oX``, else a.out)."""
    out = "a.out"
    for i, a in enumerate(args):
        if a == "-o" and i + 1 < len(args):
            out = args[i + 1]
        elif a.startswith("-o") and len(a) > 2 and not a.startswith("-on"):
            out = a[2:]
    return out


def _linked_elf(wrap: Path) -> Path | None:
    """The ELF the last final link wrote (LINKED_FILE), if it is still an
    ELF file of at most IMAGE_MAX bytes; else None."""
    try:
        elf = Path((wrap / LINKED_FILE).read_text().strip())
        with open(elf, "rb") as f:
            magic = f.read(4)
        if magic == b"\x7fELF" and elf.is_file() and elf.stat().st_size <= IMAGE_MAX:
            return elf
    except (OSError, ValueError):
        pass
    return None


def _find_image(tree: Path, since: float) -> Path | None:
    """The kernel8.img the build made: the shallowest one written since
    ``since`` (a time.time() value)."""
    made = [p for p in tree.rglob(IMAGE_NAME) if p.is_file() and p.stat().st_mtime >= since - 1]
    made.sort(key=lambda p: (len(p.relative_to(tree).parts), str(p)))
    return made[0] if made else None


BUILD_DISK = 512 << 20  #: bytes of the build jail's tmpfs: the copy, the build and /tmp, in total
BUILD_NPROC = 256  #: processes of one build jail (its own host uid: the limit binds)
IMAGE_MAX = 64 << 20  #: bytes of the one file a build jail hands out: its kernel8.img
FILE_MAX = 2 * IMAGE_MAX  #: bytes of any one file a jailed build writes (its output tar too)
LOG_BYTES = 1 << 20  #: bytes of make's output kept in build.log (the rest is counted, not kept)
IN_JAIL = "/tmp/port"  #: inside the build jail: src/ (the copy), kt/ (harness + kt-user.o), toolchain/
#: The jail's first command: unpack the input (fd argv[1]) and hand over to jailed_build.
_BOOT = ("import os, sys, tarfile\n"
         "with tarfile.open(fileobj=os.fdopen(int(sys.argv[1]), 'rb'), mode='r|') as t:\n"
         f"    t.extractall({IN_JAIL!r})\n"
         f"sys.path.insert(0, {IN_JAIL + '/kt'!r})\n"
         "from harness.port import jailed_build\n"
         "sys.exit(jailed_build(int(sys.argv[2]), sys.argv[3:]))\n")


def _variables(wrap: Path) -> list[str]:
    """make's command-line variables naming the wrappers as the cross toolchain."""
    prefix = str(wrap / TRIPLET)
    return [f"{v}={prefix[:-1] if v == 'ARMGNU' else prefix}" for v in PREFIX_VARS]


def jailed_build(out_fd: int, make_args: list[str]) -> int:
    """Inside the build jail (``_BOOT``): write the wrappers, run make on the
    copy, then send the image it made (at most IMAGE_MAX bytes), the ELF of
    the final link (as large at most; beside the image, for harness.boot) and
    the wrapper's refusal out as a tar on ``out_fd``; return make's exit status."""
    port = Path(IN_JAIL)
    wrap, copy = port / "toolchain", port / "src"
    entry_file = port / "kt" / ENTRY_FILE
    _write_wrappers(wrap, port / "kt" / "kt-user.o", entry_file.read_text() if entry_file.is_file() else ENTRY)
    env = {**os.environ, "PATH": f"{wrap}{os.pathsep}{os.environ.get('PATH', '')}"}
    since = time.time()
    code = subprocess.run(["make", "-C", str(copy), *_variables(wrap), *make_args], env=env,
                          stdin=subprocess.DEVNULL, check=False).returncode
    image = _find_image(copy, since)
    if image is not None and image.stat().st_size > IMAGE_MAX:
        print(f"kt port: {image.relative_to(copy)} is {image.stat().st_size} bytes, more than a "
              f"kernel image may be ({IMAGE_MAX}); not taken", flush=True)
        image = None
    sys.stdout.flush()
    elf = _linked_elf(wrap) if image is not None else None
    with os.fdopen(out_fd, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tar:
        if image is not None:  # the image, and the ELF it came from: nothing else leaves the jail
            tar.add(image, arcname=f"src/{image.relative_to(copy)}")
            if elf is not None:  # beside the image, where harness.boot looks for it
                tar.add(elf, arcname=f"src/{image.with_suffix('.elf').relative_to(copy)}", recursive=False)
        if (wrap / ERROR_FILE).is_file():
            tar.add(wrap / ERROR_FILE, arcname=f"toolchain/{ERROR_FILE}")
    return code


def _input_tar(copy: Path, kt_user: Path, path: Path, entry: str = ENTRY) -> None:
    """The build jail's input: the copy, the harness's modules, kt-user.o
    and the user program's name (kt/entry)."""
    with tarfile.open(path, "w") as tar:
        tar.add(copy, arcname="src")
        for module in sorted(Path(__file__).resolve().parent.glob("*.py")):
            tar.add(module, arcname=f"kt/harness/{module.name}")
        tar.add(kt_user, arcname="kt/kt-user.o")
        info = tarfile.TarInfo(f"kt/{ENTRY_FILE}")
        info.size, info.mode = len(entry.encode()), 0o644
        tar.addfile(info, io.BytesIO(entry.encode()))


def _safe_extract(archive: Path, into: Path) -> None:
    """Unpack the jail's output tar: regular files and folders only (no
    links, devices or fifos), no absolute or ``..`` names, nothing followed."""
    with tarfile.open(archive, "r:") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not parts or Path(member.name).is_absolute() or ".." in parts:
                continue
            target = into.joinpath(*parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             0o755 if member.mode & 0o100 else 0o644)
                with os.fdopen(fd, "wb") as f:
                    shutil.copyfileobj(source, f)
                os.utime(target, (member.mtime, member.mtime))


def _drain(proc: subprocess.Popen[bytes], log: Path, deadline: float) -> bool:
    """Copy the build's output to ``log`` (its first LOG_BYTES) until it
    closes; False if ``deadline`` (time.monotonic()) passed first."""
    assert proc.stdout is not None
    fd, kept, dropped = proc.stdout.fileno(), 0, 0
    with open(log, "wb") as out:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return False
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            room = max(0, LOG_BYTES - kept)
            out.write(chunk[:room])
            kept, dropped = kept + min(room, len(chunk)), dropped + max(0, len(chunk) - room)
        if dropped:
            out.write(f"\n[kt port: {dropped} more bytes of build output not kept]\n".encode())
    return True


def _build_in_jail(copy: Path, kt_user: Path, workdir: Path, log: Path, timeout: float,
                   make_args: tuple[str, ...], disk: int, nproc: int, entry: str = ENTRY) -> int | None:
    """Build ``copy`` in a build jail (harness.jail) whose tmpfs of ``disk``
    bytes holds everything it writes; bring only the built image back into
    ``copy`` (the host keeps at most FILE_MAX bytes of the build's output
    and LOG_BYTES of its log) and the refusal into workdir/toolchain. Returns make's exit
    status, None on timeout. Every process of the build is dead on return."""
    inp, outp = workdir / "input.tar", workdir / "output.tar"
    _input_tar(copy, kt_user, inp, entry)
    shutil.rmtree(copy)
    in_fd = os.open(inp, os.O_RDONLY)
    out_fd = os.open(outp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    limits = {resource.RLIMIT_CPU: LIMITS[resource.RLIMIT_CPU], resource.RLIMIT_AS: LIMITS[resource.RLIMIT_AS],
              resource.RLIMIT_FSIZE: FILE_MAX, resource.RLIMIT_NPROC: nproc}
    argv = jail.build_command([sys.executable if sys.executable.startswith("/usr/") else "/usr/bin/python3",
                               "-B", "-c", _BOOT, str(in_fd), str(out_fd), *make_args], disk)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, pass_fds=(in_fd, out_fd),
                                preexec_fn=jail.preexec(os.getpid(), limits=limits))
    finally:
        os.close(in_fd)
        os.close(out_fd)
    uid = jail.host_uid(proc.pid)
    try:
        finished = _drain(proc, log, time.monotonic() + timeout)
        if finished:
            try:
                proc.wait(timeout=max(1.0, timeout))
            except subprocess.TimeoutExpired:
                finished = False
    finally:
        if proc.poll() is None:
            proc.kill()  # bwrap: its pid namespace, and every process in it, dies with it
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        jail.kill_uid(uid)
        inp.unlink(missing_ok=True)
    copy.mkdir(parents=True, exist_ok=True)
    try:
        if finished:
            _safe_extract(outp, workdir)
    except (tarfile.TarError, OSError):
        pass  # a cut or forged output: judged as no image below
    finally:
        outp.unlink(missing_ok=True)
    return proc.returncode if finished else None


def _build_bare(copy: Path, kt_user: Path, wrap: Path, log: Path, timeout: float,
                make_args: tuple[str, ...], entry: str = ENTRY) -> int | None:
    """--unsafe-no-sandbox where no jail can be made: make on the host, in
    its own process group, with the LIMITS only."""
    _write_wrappers(wrap, kt_user, entry)
    env = {**os.environ, "PATH": f"{wrap}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", "-C", str(copy), *_variables(wrap), *make_args],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True, preexec_fn=_limits)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def port_tree(tree: Path, kt_user: Path, workdir: Path, *, timeout: float = BUILD_TIMEOUT,
              make_args: tuple[str, ...] = (), unsafe: bool = False, disk: int = BUILD_DISK,
              nproc: int = BUILD_NPROC, entry: str = ENTRY) -> Ported:
    """Copy ``tree`` into ``workdir``, build it with the wrappers in a build
    jail (``disk`` bytes and ``nproc`` processes at most), return the image.
    ``entry``: the user program's function (--entry) replaced by kt-user.o.
    Where no jail can be made the build is refused (PortError) unless
    ``unsafe``. Raises BuildFailed, NoUserProgram, NoImage or PortError."""
    tree, workdir = Path(tree).resolve(), Path(workdir).resolve()
    if not SYMBOL.fullmatch(entry):
        raise PortError(f"--entry {entry!r}: not a C identifier (the user program's function)")
    if not (tree / "Makefile").is_file() and not (tree / "makefile").is_file():
        raise PortError(f"{tree}: not a source tree with a Makefile (nor a folder holding "
                        f"only one, nor a kernel image)")
    if not kt_user.is_file():
        raise PortError(f"{kt_user} is missing: run `make` in the suite first")
    if workdir == tree or tree in workdir.parents or workdir in tree.parents:
        raise PortError(f"{workdir}: the work folder must lie outside the tree {tree} (it is "
                        f"emptied first) and must not contain it")
    why = jail.unavailable()
    if why is not None and not unsafe:
        raise PortError(f"{tree}: refusing to build it without a jail: {why}; pass "
                        f"--unsafe-no-sandbox to build it unjailed anyway")
    if workdir.exists():
        shutil.rmtree(workdir)
    copy, wrap = workdir / "src", workdir / "toolchain"
    shutil.copytree(tree, copy, ignore=SKIP, symlinks=True)
    log = workdir / "build.log"
    started, wall = time.monotonic(), time.time()
    if why is None:
        code = _build_in_jail(copy, kt_user.resolve(), workdir, log, timeout, make_args, disk, nproc, entry)
    else:
        code = _build_bare(copy, kt_user.resolve(), wrap, log, timeout, make_args, entry)
    seconds = time.monotonic() - started
    output = log.read_text(errors="replace").splitlines()
    if code is None:
        raise BuildFailed(f"{tree}: the build did not finish within {timeout:g} s (build log: {log})",
                          lines=output, source="make output")
    refused = wrap / ERROR_FILE
    if refused.is_file():
        raise NoUserProgram(f"{tree}: no user program to substitute: {refused.read_text(errors='replace').strip()[:2000]}; "
                            f"the tree needs a global function {entry}() (the lesson's first user "
                            f"program; --entry names another) in an object of its final link",
                            lines=output, source="make output")
    if code != 0:
        raise BuildFailed(f"{tree}: its build failed (make exited {code}; build log: {log})",
                          lines=output, source="make output")
    image = _find_image(copy, wall)
    if image is None:
        raise NoImage(f"{tree}: the build succeeded but made no {IMAGE_NAME} (build log: {log})",
                      lines=output, source="make output")
    beside = image.with_suffix(".elf")
    if why is not None and (elf := _linked_elf(wrap)) is not None and elf != beside:
        shutil.copyfile(elf, beside)  # unjailed build: put the ELF where a jailed one leaves it
    return Ported(image, log, seconds, beside if beside.is_file() else None)


def main(argv: list[str]) -> int:
    """``python -m harness.port link REAL KT_USER ERROR_FILE ENTRY ARGS...`` (the
    wrappers) or ``python -m harness.port TREE WORKDIR`` (by hand)."""
    if argv[:1] == ["link"] and len(argv) >= 5:
        return link(argv[1], argv[2], argv[3], argv[5:], entry=argv[4])
    if len(argv) == 2:
        kt = Path(__file__).resolve().parents[1] / "build" / "kt-user.o"
        try:
            ported = port_tree(Path(argv[0]), kt, Path(argv[1]))
        except HarnessError as e:
            print(e.report(), file=sys.stderr)
            return 1
        print(ported.image)
        return 0
    print("usage: python -m harness.port TREE WORKDIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
