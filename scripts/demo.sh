#!/usr/bin/env bash
# The README's main job: build cmux, create a local workspace of this repository
# (a git worktree on its own branch) and run a command in it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p cmux-cli
cmux=./target/release/cmux
name=demo
# Idempotent: a previous demo workspace is replaced.
"$cmux" rm "$name" --force >/dev/null 2>&1 || true
"$cmux" new "$name"
"$cmux" exec "$name" -- 'echo "in $(pwd) on branch $(git branch --show-current)"; git log --oneline -3'
"$cmux" list
