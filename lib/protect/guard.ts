// The auth service with the auth cache and the failed-login limits in front
// (README "Protection"). Wraps any AuthService (auth_http or the table), so
// the session driver sees one more AuthService and nothing else.

import type { AuthRequest, AuthResult, AuthService } from "../auth/types.ts";
import type { AuthCache } from "./cache.ts";
import type { LoginLimits } from "./limits.ts";

/**
 * What a locked-out client is told before any refusal was seen: the auth
 * table's wrong-password answer. After one, the last one the auth service
 * gave (its message and Auth-Wait), so a lockout looks like a wrong password.
 */
export const DEFAULT_REFUSAL = {
  message: "Invalid login or password",
  waitSec: 2,
  errorCode: null,
};

type Refusal = { message: string; waitSec: number; errorCode: string | null };

export function protectAuthService(
  inner: AuthService,
  cache: AuthCache,
  limits: LoginLimits,
): AuthService {
  let lastRefusal: Refusal = DEFAULT_REFUSAL;
  const limited = (req: AuthRequest) => limits.enabled && req.creds.method !== "none";

  async function answer(req: AuthRequest): Promise<AuthResult> {
    const hit = await cache.lookup(req);
    if (hit !== null) {
      return hit.kind === "refused" ? { ...hit, log: "refusal from the auth cache" } : hit;
    }
    const r = await inner.authenticate(req);
    await cache.store(req, r);
    return r;
  }

  return {
    route: inner.route,
    close: inner.close?.bind(inner),
    explainRefused: inner.explainRefused?.bind(inner),
    async authenticate(req: AuthRequest): Promise<AuthResult> {
      if (!limited(req)) return await answer(req);
      const { clientIp } = req;
      const user = req.creds.user;
      const lock = await limits.locked(clientIp, user);
      if (lock !== null) {
        return {
          kind: "refused",
          ...lastRefusal,
          limited: true,
          log: `login refused without asking the auth service: ${
            lock.by === "ip" ? "address" : "user"
          } locked out`,
        };
      }
      const r = await answer(req);
      if (r.kind === "ok") {
        await limits.succeeded(user);
      } else if (r.kind === "refused" && !(r.errorCode?.startsWith("4") ?? false)) {
        // A wrong password (temporary failures are not the client's doing).
        lastRefusal = { message: r.message, waitSec: r.waitSec, errorCode: r.errorCode };
        await limits.failed(clientIp, user);
      }
      return r;
    },
  };
}
