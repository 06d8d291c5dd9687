"""A synthetic uv.lock of tens of MB: URL-sourced packages (no index, no network)."""

from __future__ import annotations

import hashlib
import sys

FILES = "https://files.example.invalid"


def big_lock(n: int) -> str:
    names = [f"pkg-{i:06d}" for i in range(n)]
    out = ['version = 1\nrevision = 3\nrequires-python = ">=3.11"\n\n']
    out.append('[[package]]\nname = "root"\nversion = "0.1.0"\nsource = { virtual = "." }\n')
    out.append("dependencies = [\n")
    out += [f'    {{ name = "{m}" }},\n' for m in names]
    out.append("]\n\n")
    for i, m in enumerate(names):
        digest = hashlib.sha256(m.encode()).hexdigest()
        url = f"{FILES}/{m}-1.0-py3-none-any.whl"
        deps = "".join(
            f'    {{ name = "{names[j]}", marker = "sys_platform == \'linux\'" }},\n'
            for j in (i + 1, i + 2)
            if j < n
        )
        out.append(f'[[package]]\nname = "{m}"\nversion = "1.0"\nsource = {{ url = "{url}" }}\n')
        if deps:
            out.append(f"dependencies = [\n{deps}]\n")
        out.append(f'wheels = [\n    {{ url = "{url}", hash = "sha256:{digest}" }},\n]\n\n')
    return "".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    text = big_lock(int(sys.argv[1]))
    with open(sys.argv[2], "w") as stream:
        stream.write(text)
    print(len(text) / 1e6, "MB")
