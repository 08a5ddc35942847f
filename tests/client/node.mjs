// The client library in Node against a roomgate runtime, for tests/client.rs: runs
// tests/client/scenario.mjs with the `ws` package's WebSocket (Node 20 has none built in)
// and prints its summary as one JSON line; exits 1 if a check failed.
//
//   ROOMGATE_USERS='[["alice","pw","Alice"],...]' ROOMGATE_TTL=16 node tests/client/node.mjs <url>
import WebSocket from "ws";
import { RoomClient } from "../../client/src/index.js";
import { scenario } from "./scenario.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: node.mjs <server url>");
const summary = await scenario({
  RoomClient,
  WebSocket,
  base,
  users: JSON.parse(process.env.ROOMGATE_USERS ?? "[]"),
  tag: "node",
  ttlSeconds: Number(process.env.ROOMGATE_TTL),
});
console.log(JSON.stringify(summary));
process.exit(summary.ok ? 0 : 1);
