// Echo, written with the AssemblyScript waPC guest: answers HandleRequest
// with JSON naming the toolchain, the method, the path and the query string.
// Built with --exportStart _start, so the host must run _start (which
// registers the handler) before the first call, as AssemblyScript guests need.
import { register, handleCall, handleAbort, consoleLog, Result } from "@wapc/as-guest";
import { Decoder, Encoder, Sizer, Writer } from "@wapc/as-msgpack";

function writeResponse(w: Writer, body: ArrayBuffer): void {
  w.writeMapSize(4);
  w.writeString("statusCode");
  w.writeUInt32(200);
  w.writeString("status");
  w.writeString("OK");
  w.writeString("header");
  w.writeMapSize(1);
  w.writeString("content-type");
  w.writeString("application/json");
  w.writeString("body");
  w.writeByteArray(body);
}

register("HandleRequest", function (payload: ArrayBuffer): Result<ArrayBuffer> {
  const d = new Decoder(payload);
  let method = "";
  let path = "";
  let query = "";
  let n = d.readMapSize();
  while (n > 0) {
    n--;
    const key = d.readString();
    if (key == "method") method = d.readString();
    else if (key == "path") path = d.readString();
    else if (key == "queryString" || key == "query_string") query = d.readString();
    else d.skip();
  }
  consoleLog("as-echo handled " + method + " " + path);
  const body = String.UTF8.encode(
    '{"toolchain":"assemblyscript","method":"' + method + '","path":"' + path + '","query_string":"' + query + '"}'
  );
  const sizer = new Sizer();
  writeResponse(sizer, body);
  const out = new ArrayBuffer(sizer.length);
  writeResponse(new Encoder(out), body);
  return Result.ok<ArrayBuffer>(out);
});

export function __guest_call(operation_size: usize, payload_size: usize): bool {
  return handleCall(operation_size, payload_size);
}

function abort(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void {
  handleAbort(message, fileName, lineNumber, columnNumber);
}
