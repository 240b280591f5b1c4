"""Finding the ``unidiff-studio`` binary and running one of its commands
with QGIS's feedback: progress lines become percent and text, Cancel stops
the process (SIGTERM, then SIGKILL; its outputs are written under a hidden
name and renamed into place only when whole, so a stopped run leaves
nothing), and a failure raises with the binary's own message."""

import os
import re
import shutil
import subprocess

from qgis.core import QgsProcessingException

SETTING = "UNIDIFF_STUDIO_BINARY"
ENVIRONMENT = "UNIDIFF_STUDIO_BIN"

# "[..] features of the whole scene   [#####     ] 12/40, ETA 9 s" (run,
# sweep), "[..] tile 3/64, ETA 5 s" (predict)
PROGRESS = re.compile(
    r"^\[\.\.\]\s+(?P<phase>.*?)\s*(?:\[[# ]*\]\s*)?(?P<done>\d+)/(?P<total>\d+)(?:,|\s|$)"
)


def _setting():
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:
        return ""
    return ProcessingConfig.getSetting(SETTING) or ""


def find_binary():
    """The binary: the provider's setting, then $UNIDIFF_STUDIO_BIN, then PATH."""
    for candidate in (_setting(), os.environ.get(ENVIRONMENT, "")):
        if candidate:
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
            raise QgsProcessingException(
                f"the UniDiff Studio binary set as {candidate!r} is not an executable file: "
                "set it in Settings > Options > Processing > Providers > UniDiff Studio"
            )
    found = shutil.which("unidiff-studio")
    if found is None:
        raise QgsProcessingException(
            "the unidiff-studio binary is not on PATH: install the unidiff-studio package, "
            "or set the binary in Settings > Options > Processing > Providers > UniDiff Studio"
        )
    return found


def _lines(stream):
    """Lines of a byte stream split at newlines and carriage returns (the
    binary rewrites its progress line in place)."""
    buffer = b""
    while True:
        chunk = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
        if not chunk:
            break
        buffer += chunk
        parts = re.split(rb"[\r\n]", buffer)
        buffer = parts.pop()
        for part in parts:
            if part.strip():
                yield part.decode("utf-8", "replace").rstrip()
    if buffer.strip():
        yield buffer.decode("utf-8", "replace").rstrip()


def run_command(args, feedback):
    """Runs ``unidiff-studio ARGS``; returns its log. Raises with its
    message when it fails, and when cancelled (after killing it)."""
    command = [find_binary()] + [str(a) for a in args]
    feedback.pushCommandInfo(" ".join(_quoted(a) for a in command))
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, RUST_LOG_STYLE="never"),
    )
    def stop():
        # SIGTERM: the binary removes its half-written output and exits;
        # killed outright if it has not within 10 s.
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

    feedback.canceled.connect(stop)
    log = []
    last_phase = None
    try:
        for line in _lines(process.stdout):
            log.append(line)
            match = PROGRESS.match(line)
            if match:
                total = int(match["total"])
                if total > 0:
                    feedback.setProgress(100.0 * int(match["done"]) / total)
                if match["phase"] != last_phase:
                    last_phase = match["phase"]
                    feedback.setProgressText(last_phase)
                continue
            feedback.pushConsoleInfo(line)
            if line.startswith("[..] "):
                feedback.setProgressText(line[5:])
    finally:
        code = process.wait()
        process.stdout.close()
        try:
            feedback.canceled.disconnect(stop)
        except TypeError:
            pass
    if feedback.isCanceled():
        raise QgsProcessingException("cancelled: the command was stopped and left no output")
    if code != 0:
        errors = [line for line in log if line.startswith("error")]
        message = "\n".join(errors) if errors else "\n".join(log[-5:])
        raise QgsProcessingException(f"unidiff-studio {args[0]} failed: {message}")
    return log


def _quoted(arg):
    return arg if re.fullmatch(r"[\w./:=,-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"
