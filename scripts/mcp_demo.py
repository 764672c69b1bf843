#!/usr/bin/env python3
"""An agent's session against `cmux mcp WORKSPACE`, with the official MCP Python SDK
(`pip install mcp`), printed as a transcript.

It starts a background job and reads it with job_output, lists and kills jobs, uses
grep in its three output modes and with context lines, and runs a `cargo build`-like
command whose error comes after 3,000 lines of output, to show the error kept in the
tail of the result.

    python3 scripts/mcp_demo.py WORKSPACE [--cmux PATH]

The workspace must exist (`cmux new WORKSPACE`, `--ssh HOST`, `--coder NAME`): the
session runs on whatever host it lives on. `cmux mcp` inherits this environment
(CMUX_HOME, CMUX_SSH_CONFIG...). The demo writes a few files under `mcp-demo/` in the
workspace.
"""

import argparse
import asyncio
import json
import os
import shutil
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

# Results longer than this are shown here as their first and last lines (the
# transcript's own shortening, on top of what cmux keeps).
SHOWN_LINES = 24

# What the cargo-like build prints: 3,000 progress lines, then the error. Both streams
# into stdout, as `cargo build 2>&1` in an agent's command would.
BUILD = r"""{
for i in $(seq 1 3000); do echo "   Compiling dep-$i v0.1.$i (registry+https://github.com/rust-lang/crates.io-index)"; done
echo 'error[E0425]: cannot find value `undefined_thing` in this scope'
echo ' --> src/main.rs:3:5'
echo '  |'
echo '3 |     undefined_thing'
echo '  |     ^^^^^^^^^^^^^^^ not found in this scope'
echo 'error: could not compile `demo` (bin "demo") due to 1 previous error'
exit 101
} 2>&1"""

FILES = {
    "mcp-demo/src/app.py": "import util\n\n# TODO: handle errors\ndef main():\n    return util.add(1, 2)\n\nif __name__ == '__main__':\n    main()\n",
    "mcp-demo/src/util.py": "def add(a, b):\n    # todo: overflow?\n    return a + b\n\n# TODO: more helpers\n",
    "mcp-demo/NOTES.md": "# Notes\n\nTODO: write the docs\nNothing else.\n",
}


def field(obj, snake, camel):
    """A field of an SDK object under its SDK 2 (snake_case) or SDK 1 (camelCase) name."""
    return getattr(obj, snake, None) if hasattr(obj, snake) else getattr(obj, camel, None)


def shown(text):
    """`text`, or its first and last lines when long, with cmux's own notes of what it
    cut (lines starting with `[...`) always shown."""
    lines = text.split("\n")
    if len(lines) <= SHOWN_LINES:
        return text
    keep = set(range(6)) | set(range(len(lines) - (SHOWN_LINES - 6), len(lines)))
    keep |= {i for i, line in enumerate(lines) if line.startswith("[...")}
    out, hidden = [], 0
    for i, line in enumerate(lines):
        if i in keep:
            if hidden:
                out.append(f"    ┆ ({hidden} more lines not shown in this transcript)")
                hidden = 0
            out.append(line)
        else:
            hidden += 1
    return "\n".join(out)


class Agent:
    def __init__(self, session):
        self.session = session

    async def call(self, tool, arguments, note=None):
        if note:
            print(f"\n# {note}")
        print(f"→ {tool} {json.dumps(arguments, ensure_ascii=False)}")
        result = await self.session.call_tool(tool, arguments)
        texts = []
        for item in result.content:
            if getattr(item, "type", None) == "text":
                texts.append(item.text)
            else:
                texts.append(f"[{getattr(item, 'type', '?')} content]")
        text = "\n".join(texts)
        error = bool(field(result, "is_error", "isError"))
        marker = "← (isError) " if error else "← "
        print(marker + shown(text).replace("\n", "\n  "))
        return text, error


async def demo(workspace, cmux):
    server = StdioServerParameters(command=cmux, args=["mcp", workspace], env=dict(os.environ))
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            info = field(init, "server_info", "serverInfo")
            version = field(init, "protocol_version", "protocolVersion")
            print(f"# connected: {info.name} {info.version}, protocol {version}")
            tools = await session.list_tools()
            print("# tools: " + ", ".join(t.name for t in tools.tools))
            agent = Agent(session)

            # Background job: started at once, read while it runs and once it ended.
            text, _ = await agent.call(
                "bash",
                {
                    "command": "for i in 1 2 3; do echo \"tick $i\"; sleep 1; done; echo 'server stopped' >&2; exit 3",
                    "run_in_background": True,
                },
                "a background job: bash with run_in_background returns its id at once",
            )
            job = text.split("job ", 1)[1].split()[0].strip(".:,")
            await agent.call("job_output", {"id": job, "wait_secs": 2}, "its output so far")
            await agent.call("jobs", {}, "the workspace's jobs")
            for _ in range(30):
                text, _ = await agent.call(
                    "job_output", {"id": job, "wait_secs": 10}, "the rest, until it ends"
                )
                if "is still running" not in text.rstrip("\n").rsplit("\n", 1)[-1]:
                    break
            text, _ = await agent.call(
                "bash",
                {"command": "exec sleep 300", "run_in_background": True},
                "another job, stopped with job_kill",
            )
            sleeper = text.split("job ", 1)[1].split()[0].strip(".:,")
            await agent.call("job_kill", {"id": sleeper})

            # grep, in its three output modes and with context.
            print("\n# files for grep")
            for path, content in FILES.items():
                await agent.call("write_file", {"path": path, "content": content})
            await agent.call(
                "grep", {"pattern": "TODO", "path": "mcp-demo"}, "grep: matching lines (content)"
            )
            await agent.call(
                "grep",
                {"pattern": "todo", "path": "mcp-demo", "case_insensitive": True,
                 "output_mode": "files_with_matches"},
                "grep -i: files with matches",
            )
            await agent.call(
                "grep",
                {"pattern": "TODO", "path": "mcp-demo", "output_mode": "count"},
                "grep: count per file",
            )
            await agent.call(
                "grep",
                {"pattern": "return", "path": "mcp-demo", "context": 1, "type": "py"},
                "grep -C 1 in Python files",
            )

            # A build whose error comes after 3,000 lines.
            text, _ = await agent.call(
                "bash", {"command": BUILD}, "a cargo-build-like command: the error comes last"
            )
            kept = "error[E0425]" in text and "could not compile" in text
            print(f"\n# the error is in the result: {kept}")
            return 0 if kept else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace")
    parser.add_argument("--cmux", default=shutil.which("cmux") or "cmux")
    args = parser.parse_args()
    sys.exit(asyncio.run(demo(args.workspace, args.cmux)))


if __name__ == "__main__":
    main()
