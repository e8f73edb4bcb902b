#!/usr/bin/env python3
"""Checks that x402-runtime's modules import only downward (README: Architecture).

Every `crate::…` path outside comments and tests is read; the module it names must sit on a
lower layer than the file that names it (or the same folder, in the order server/mod.rs gives).
Exits non-zero and lists each upward import otherwise."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "x402-runtime", "src")
# Lowest first. Siblings share a number and may not import each other.
LAYERS = {
    "base": 0,
    "bazaar": 0,
    "proto": 1,
    "price": 1,
    "network": 2,
    "schemes": 3,
    "store": 4,
    "facilitator": 4,
    "route": 5,
    "page": 5,
    "client": 6,
    "server": 6,
    "discovery": 7,
    "openapi": 8,
}
# Inside server/: a file may import the files before it.
SERVER = [
    "config", "telemetry", "lifecycle", "answer", "refusal", "challenge", "identifier", "payment", "charge", "pricing",
    "settlement/backoff",
    "engine", "offers", "settlement", "known", "admission", "serve", "shutdown",
]


def module_of(path):
    rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
    top = rel.split("/")[0].removesuffix(".rs")
    return rel, top


def server_rank(rel_or_path):
    name = rel_or_path.removeprefix("server/").removesuffix(".rs").removesuffix("/mod")
    matches = [(len(e), i) for i, e in enumerate(SERVER) if name == e or name.startswith(e + "/")]
    return max(matches)[1] if matches else None


def code_lines(text):
    in_tests = False
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if stripped.startswith("#[cfg(test)]"):
            in_tests = True
        if in_tests:
            continue
        if stripped.startswith("//"):
            continue
        yield number, line.split("//")[0]


def main():
    problems = []
    for folder, _, files in os.walk(ROOT):
        for file in files:
            if not file.endswith(".rs"):
                continue
            path = os.path.join(folder, file)
            rel, top = module_of(path)
            if top in ("lib",):
                continue
            text = open(path).read()
            if top == "server" and rel != "server/mod.rs" and server_rank(rel) is None:
                problems.append(f"{rel}: not placed in the server order (scripts/layers.py)")
            for number, line in code_lines(text):
                for target in re.findall(r"crate::([a-z_]+)(?:::([a-z_]+))?(?:::([a-z_]+))?", line):
                    head = target[0]
                    if head not in LAYERS:
                        continue
                    if head == top:
                        if top == "server" and target[1]:
                            want = "/".join(t for t in target[1:] if t)
                            mine, theirs = server_rank(rel), server_rank(want)
                            if mine is not None and theirs is not None and theirs > mine:
                                problems.append(f"{rel}:{number}: server/{want} is after this file")
                        continue
                    if LAYERS[head] >= LAYERS[top]:
                        problems.append(f"{rel}:{number}: {top} (layer {LAYERS[top]}) imports crate::{head} (layer {LAYERS[head]})")
            # `super::x` inside server/ follows the same order.
            if top == "server":
                for number, line in code_lines(text):
                    for found in re.findall(r"\bsuper::([a-z_]+)(?:::([a-z_]+))?", line):
                        name = "/".join(f for f in found if f)
                        base = os.path.dirname(rel).removeprefix("server").strip("/")
                        want = "/".join(p for p in (base, name) if p)
                        if want.startswith("settlement/") and base == "settlement":
                            continue
                        mine, theirs = server_rank(rel), server_rank(want)
                        if mine is not None and theirs is not None and theirs > mine:
                            problems.append(f"{rel}:{number}: server/{want} is after this file")
    for problem in sorted(set(problems)):
        print(problem)
    if problems:
        sys.exit(1)
    print("x402-runtime imports run downward only")


main()
