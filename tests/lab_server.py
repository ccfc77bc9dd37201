"""A throwaway JupyterLab server for the end-to-end browser tests (tests/test_browser.py).

The server, its kernels and the widgets front end all come from the interpreter that
runs pytest (the project's .venv), so the test proves that one environment is enough.
Everything the server writes (settings, workspaces, runtime files, autosaved
notebooks) goes to a temporary directory: the committed notebooks are never touched.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from binedu.io import atomic_write

# User settings (JUPYTERLAB_SETTINGS_DIR) that make a headless run deterministic:
# - windowingMode "none": JupyterLab 4 otherwise attaches or renders only the cells in
#   view, and a widget below the fold would never be drawn;
# - no news / update check popups (they need the internet and cover the notebook).
LAB_SETTINGS: dict[str, dict[str, object]] = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


class LabServerError(RuntimeError):
    """The JupyterLab server did not start or answer; the message holds its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_lab_settings(settings_dir: Path, settings: dict[str, dict[str, object]] = LAB_SETTINGS) -> None:
    """Write JupyterLab user settings files (``<plugin id>.jupyterlab-settings``)."""
    for plugin, values in settings.items():
        package, _, name = plugin.rpartition("/")
        path = settings_dir / package / f"{name}.jupyterlab-settings"
        text = json.dumps(values, indent=2)
        atomic_write(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))


@dataclass
class LabServer:
    """A running ``jupyter lab`` process serving ``root_dir`` on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    root_dir: Path
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, relative_path: str, workspace: str = "default") -> str:
        """The URL that opens ``relative_path`` (relative to root_dir) in JupyterLab.

        Each workspace remembers its open tabs; a fresh, reset one per page keeps a test
        from restoring (and running) notebooks that an earlier test opened."""
        return f"{self.base_url}/lab/workspaces/{quote(workspace)}/tree/{quote(relative_path)}?reset&token={self.token}"

    def log(self) -> str:
        """The server's output so far (stdout and stderr)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def api(self, path: str, method: str = "GET", timeout: float = 10.0) -> object:
        """Call the server's REST API with the token; returns the decoded JSON (or None)."""
        request = urllib.request.Request(
            f"{self.base_url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (local URL)
            body = response.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float) -> None:
        """Block until ``/api/status`` answers; raise LabServerError with the log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LabServerError(f"jupyter lab exited with {self.process.returncode}:\n{self.log()}")
            try:
                self.api("/api/status", timeout=2.0)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        raise LabServerError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log()}")

    def stop(self, timeout: float = 20.0) -> None:
        """Shut the kernels and the server down; kill the process group if they linger."""
        if self.process.poll() is None:
            try:
                for kernel in self.api("/api/kernels"):  # type: ignore[union-attr]
                    self.api(f"/api/kernels/{kernel['id']}", method="DELETE")
                self.api("/api/shutdown", method="POST")
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                continue


def start_lab(root_dir: Path, work_dir: Path, timeout: float = 120.0) -> LabServer:
    """Start ``jupyter lab`` on 127.0.0.1 with a random token, serving ``root_dir``.

    ``work_dir`` receives the isolated Jupyter config, data, runtime, settings and
    workspace directories and the server log. The caller must call ``stop()``.
    """
    port = free_port()
    token = secrets.token_hex(24)
    dirs = {
        name: work_dir / name
        for name in ("config", "data", "runtime", "settings", "workspaces", "ipython", "matplotlib")
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    write_lab_settings(dirs["settings"])
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "MPLCONFIGDIR": str(dirs["matplotlib"]),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("JUPYTER_PATH", None)
    env.pop("MPLBACKEND", None)  # the kernel must use the inline backend, as a user's does
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root; jupyter refuses to start otherwise
    log_path = work_dir / "jupyter-lab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LabServer(process=process, port=port, token=token, root_dir=root_dir, log_path=log_path)
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop(timeout=5.0)
        raise
    return server
