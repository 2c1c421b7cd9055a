// Sends DTMF with the real node-bandwidth client (Catapult v1 SDK) against baseUrl.
// usage: node bandwidth_send.js BASEURL USERID TOKEN SECRET CALLID DTMF
// prints one JSON line: {"ok":true} or {"ok":false,"name":...,"message":...,"statusCode":...}
"use strict";
const path = require("path");
const Bandwidth = require(path.join(__dirname, "..", "..", "..", "node_modules", "node-bandwidth"));

const [baseUrl, userId, apiToken, apiSecret, callId, dtmf] = process.argv.slice(2);
const client = new Bandwidth({ userId, apiToken, apiSecret, baseUrl });
client.Call.sendDtmf(callId, dtmf)
  .then(() => {
    console.log(JSON.stringify({ ok: true }));
  })
  .catch((err) => {
    console.log(JSON.stringify({
      ok: false,
      name: err.name,
      message: err.message,
      statusCode: err.statusCode,
      limitReset: err.limitReset,
    }));
  });
