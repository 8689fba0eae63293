// A stdio MCP server that misbehaves on purpose, for the bounds tests. The mode is argv[2]:
//   silent      reads requests and never answers
//   crash       exits with status 3 on the first request
//   garbage     prints lines that are not JSON-RPC, and never a real answer
//   huge        a well-behaved server whose one tool returns 10 MB of text
//   many-tools  a well-behaved server that lists 1,000 tools
import readline from "node:readline";

const mode = process.argv[2];
process.stderr.write(`misbehaving server in mode ${mode}; token ${process.env.DEF_SECRET ?? "none"}\n`);
const send = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let msg;
  try { msg = JSON.parse(line); } catch { return; }
  if (mode === "silent") return;
  if (mode === "crash") process.exit(3);
  if (mode === "garbage") { process.stdout.write("this is not json\n{\"jsonrpc\": 7}\n"); return; }
  if (msg.id === undefined) return;
  switch (msg.method) {
    case "initialize":
      send({ jsonrpc: "2.0", id: msg.id, result: { protocolVersion: msg.params.protocolVersion,
        capabilities: { tools: {} }, serverInfo: { name: "misbehaving", version: "1" } } });
      break;
    case "tools/list": {
      const n = mode === "many-tools" ? 1000 : 1;
      const tools = Array.from({ length: n }, (_, i) => ({ name: `tool${i}`, description: "t",
        inputSchema: { type: "object" } }));
      send({ jsonrpc: "2.0", id: msg.id, result: { tools } });
      break;
    }
    case "tools/call":
      send({ jsonrpc: "2.0", id: msg.id, result: { content: [{ type: "text", text: "x".repeat(10 * 1024 * 1024) }] } });
      break;
    default:
      send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "no such method" } });
  }
});
