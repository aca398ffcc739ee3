// UDP sockets for both runtimes over node:dgram (loaded on first use: most
// configurations have neither a resolver nor syslog). Bun's own UDP API
// would do as well, but DNS queries and syslog lines are a few datagrams,
// not a hot path, so one implementation serves both.

import type { RemoteInfo } from "node:dgram";
import { nodeDgram } from "../builtins.ts";
import type { DatagramOptions, DatagramSocket } from "../types.ts";

export function datagram(options: DatagramOptions): DatagramSocket {
  const s = nodeDgram().createSocket(options.family === 4 ? "udp4" : "udp6");
  const onMessage = options.onMessage;
  if (onMessage) {
    s.on("message", (msg: Uint8Array, r: RemoteInfo) => onMessage(msg, { address: r.address, port: r.port }));
  }
  // ICMP errors and the like: delivery is best effort (DatagramSocket.send).
  s.on("error", () => {});
  return {
    // The callback turns a failed send into a dropped datagram instead of an error event.
    send: (data, port, host) => void s.send(data, port, host, () => {}),
    ref: () => void s.ref(),
    unref: () => void s.unref(),
    close: () => {
      try {
        s.close();
      } catch {
        // already closed
      }
    },
  };
}
