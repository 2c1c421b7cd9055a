// Subscribes to /v2/me/calls with the real CometD JavaScript client (cometd +
// cometd-nodejs-client), the way a GWS agent desktop does: first a REST GET with Basic
// auth to get the JSESSIONID session and the CSRF token, then CometD long-polling.
// usage: node cometd_listen.mjs BASEURL USER SECRET COUNT [stock]
// prints "READY" once subscribed, then one JSON line per message on /v2/me/calls,
// and exits after COUNT messages (or after 60 s with exit code 3).
// "stock": configured as out of the box, with HTTP Basic credentials only (no session
// cookie, no CSRF token); a refused handshake prints {"error": "handshake failed", reply}.
import { createRequire } from "module";
import path from "path";
import { fileURLToPath } from "url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "..", "..", "package.json"));
const { adapt } = await import(require.resolve("cometd-nodejs-client"));
const { CometD } = await import(require.resolve("cometd"));

const [base, user, secret, countText, mode] = process.argv.slice(2);
const count = parseInt(countText || "1", 10);
const basic = "Basic " + Buffer.from(user + ":" + secret).toString("base64");

let requestHeaders = { Authorization: basic };
if (mode !== "stock") {
  const me = await fetch(base + "/api/v2/me", { headers: { Authorization: basic } });
  if (me.status !== 200) {
    console.log(JSON.stringify({ error: "GET /api/v2/me failed", status: me.status }));
    process.exit(2);
  }
  const token = me.headers.get("x-csrf-token");
  const cookie = me.headers.get("set-cookie").split(";")[0];
  requestHeaders = { Cookie: cookie, "X-CSRF-TOKEN": token };
}

adapt();
const cometd = new CometD();
cometd.unregisterTransport("websocket");
cometd.configure({
  url: base + "/api/v2/notifications",
  requestHeaders,
  logLevel: "warn",
});

let received = 0;
const timer = setTimeout(() => {
  console.log(JSON.stringify({ error: "timeout", received }));
  process.exit(3);
}, 60000);

cometd.handshake((reply) => {
  if (!reply.successful) {
    console.log(JSON.stringify({ error: "handshake failed", reply }));
    process.exit(2);
  }
  cometd.subscribe("/v2/me/calls", (message) => {
    console.log(JSON.stringify(message));
    received += 1;
    if (received >= count) {
      clearTimeout(timer);
      cometd.disconnect(() => process.exit(0));
    }
  }, (subscribeReply) => {
    if (subscribeReply.successful) {
      console.log("READY");
    } else {
      console.log(JSON.stringify({ error: "subscribe failed", subscribeReply }));
      process.exit(2);
    }
  });
});
