"""`infra serve` driven by the official MCP Python SDK (the `mcp` package) over stdio.

What an MCP client outside Rust sees: the handshake, the tool list and its schemas, a host tool,
argument validation, a real sandboxed HTTP call against a loopback server this test starts,
artifacts as resources, runbooks as prompts, and the audit chain. Run by scripts/test.sh; by hand:

    target/pyenv/bin/pytest -s tests/python          # INFRA_BIN defaults to target/debug/infra
"""

from __future__ import annotations

import http.server
import json
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parents[2]
HOST_TOOLS = {"help", "artifacts", "audit", "plugins"}
PLUGIN_TOOLS = {"http"}
# Every test is bounded: a hung server fails the test instead of stalling CI.
DEADLINE_S = 120

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def infra_bin() -> str:
    path = Path(os.environ.get("INFRA_BIN", "target/debug/infra"))
    if not path.is_absolute():
        path = REPO / path
    assert path.is_file(), f"{path} is missing: build it first (`cargo build -p infra`), or set INFRA_BIN"
    return str(path)


@pytest.fixture(scope="module")
def infra_home() -> Iterator[str]:
    """One state directory for the module: the compiled-plugin cache and audit log carry over."""
    with tempfile.TemporaryDirectory(prefix="infra-pytest-") as home:
        yield home


@asynccontextmanager
async def connect(home: str, *, handshake: bool = True) -> AsyncIterator[ClientSession]:
    """Starts `infra serve` with `home` as INFRA_HOME and opens a client session to it."""
    server = StdioServerParameters(
        command=infra_bin(),
        args=["serve"],
        # Merged over the SDK's safe default environment (HOME, PATH, …): neither safety flag
        # is passed on, so the server runs with both off, as a client would start it.
        env={"INFRA_HOME": home, "INFRA_LOG": "warn"},
    )
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            if handshake:
                await session.initialize()
            yield session


def text_of(result) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a JSON body naming the path it was asked for."""

    def do_GET(self) -> None:
        body = json.dumps({"hello": "from python", "path": self.path, "n": [1, 2, 3]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture(scope="module")
def json_server() -> Iterator[str]:
    """A real HTTP server on a free loopback port, in a thread; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JsonHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_initialize_negotiates_a_protocol_version(infra_home: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with connect(infra_home, handshake=False) as session:
            result = await session.initialize()
            print(f"\n[python mcp client] initialize negotiated protocol version {result.protocol_version}")
            assert session.protocol_version == result.protocol_version
            assert result.server_info.name == "infra"
            assert result.capabilities.tools is not None
            assert result.instructions and "help" in result.instructions


async def test_discover_negotiates_the_stateless_protocol(infra_home: str) -> None:
    """The 2026-07-28 era starts with `server/discover` instead of `initialize`."""
    with anyio.fail_after(DEADLINE_S):
        async with connect(infra_home, handshake=False) as session:
            await session.discover()
            print(f"\n[python mcp client] server/discover negotiated protocol version {session.protocol_version}")
            listed = await session.list_tools()
            assert {t.name for t in listed.tools} >= HOST_TOOLS | PLUGIN_TOOLS


async def test_tools_are_listed_with_closed_input_and_output_schemas(infra_home: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with connect(infra_home) as session:
            listed = await session.list_tools()
    names = {t.name for t in listed.tools}
    assert names >= HOST_TOOLS | PLUGIN_TOOLS, f"missing tools: {(HOST_TOOLS | PLUGIN_TOOLS) - names}"
    for tool in listed.tools:
        schema = tool.input_schema
        assert schema.get("type") == "object", f"{tool.name}: input schema is not an object schema"
        branches = schema.get("oneOf") or [schema]
        for branch in branches:
            assert branch.get("additionalProperties") is False, (
                f"{tool.name}: input schema accepts unknown fields: {json.dumps(branch)[:300]}"
            )
        assert tool.output_schema is not None, f"{tool.name}: no output schema"
        assert tool.output_schema.get("type") == "object", f"{tool.name}: output schema is not an object schema"
        assert tool.description, f"{tool.name}: no description"


async def test_help_answers(infra_home: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with connect(infra_home) as session:
            result = await session.call_tool("help", {})
    assert not result.is_error, text_of(result)
    assert result.structured_content["ok"] is True
    assert result.structured_content["tool"] == "help"
    # The text mirror carries the same result for clients that ignore structured content.
    assert "http" in text_of(result)


async def test_unknown_field_is_an_error_result_naming_it(infra_home: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with connect(infra_home) as session:
            result = await session.call_tool(
                "http", {"action": "request", "url": "http://127.0.0.1:9/", "bogus_field": 1}
            )
    assert result.is_error, "an unknown field must be refused"
    assert "bogus_field" in text_of(result), text_of(result)
    assert result.structured_content["ok"] is False
    assert result.structured_content["error"]["kind"] == "invalid"


async def test_http_request_reaches_a_loopback_server(infra_home: str, json_server: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with connect(infra_home) as session:
            result = await session.call_tool("http", {"action": "request", "url": f"{json_server}/py/check"})
    assert not result.is_error, text_of(result)
    out = result.structured_content
    assert out["ok"] is True
    assert out["status"] == 200
    assert out["json"] == {"hello": "from python", "path": "/py/check", "n": [1, 2, 3]}


async def test_a_downloaded_artifact_is_a_resource_read_whole_and_by_range(
    infra_home: str, json_server: str
) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with connect(infra_home) as session:
            assert (await session.initialize()).capabilities.resources is not None
            download = await session.call_tool("http", {"action": "download", "url": f"{json_server}/py/artifact"})
            assert not download.is_error, text_of(download)
            uri = download.structured_content["artifact"]["uri"]
            listed = await session.list_resources()
            whole = await session.read_resource(uri)
            part = await session.read_resource(f"{uri}?offset=2&length=5")
            with pytest.raises(MCPError) as bad:
                await session.read_resource("file:///etc/passwd")
    newest = listed.resources[0]
    assert str(newest.uri) == uri, "newest first"
    assert newest.mime_type == "application/json"
    body = whole.contents[0].text
    assert newest.size == len(body.encode())
    assert json.loads(body) == {"hello": "from python", "path": "/py/artifact", "n": [1, 2, 3]}
    assert part.contents[0].text == body[2:7]
    assert "not an artifact URI" in str(bad.value) and "offset=N&length=M" in str(bad.value), bad.value
    print(f"\n[python mcp client] resources/list: {len(listed.resources)} artifact(s); read {uri} and a range")


async def test_runbooks_are_prompts_that_word_a_runbook_run(infra_home: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with connect(infra_home) as session:
            listed = await session.list_prompts()
            got = await session.get_prompt("repo.snapshot", {"root": "work", "commits": "2"})
            with pytest.raises(MCPError) as bad:
                await session.get_prompt("repo.snapshot", {"commits": "two"})
    snapshot = next(p for p in listed.prompts if p.name == "repo.snapshot")
    assert {a.name for a in snapshot.arguments} == {"root", "path", "commits"}
    message = got.messages[0]
    assert message.role == "user"
    call = json.loads(message.content.text.split("```json\n")[1].split("\n```")[0])
    assert call == {"action": "run", "name": "repo.snapshot", "inputs": {"root": "work", "commits": 2}}
    assert "arguments.commits" in str(bad.value), bad.value
    print(f"\n[python mcp client] prompts/list: {len(listed.prompts)} runbook(s); got repo.snapshot")


async def test_audit_chain_verifies(infra_home: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with connect(infra_home) as session:
            await session.call_tool("help", {"query": "audit"})
            result = await session.call_tool("audit", {"action": "verify"})
    assert not result.is_error, text_of(result)
    out = result.structured_content
    print(f"\n[python mcp client] audit verify: {out.get('report')}")
    assert out["valid"] is True, out
    # At least the help call above; in a full run, every call of the tests before this one.
    assert out["records"] >= 1, out
