// The bench's opponent: nginx with its mail module, from Debian's packages
// (`nginx`, `libnginx-mod-mail`), installed when missing. The packages'
// scripts would start nginx as a system service on port 80; a policy-rc.d
// that denies service starts is put in place for the install (unless one
// exists already, as in Docker images) and removed afterwards, as .ci/run
// does for Postfix. The bench itself runs nginx in the foreground with its
// own prefix, never as a service.

import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, rmSync, writeFileSync } from "node:fs";
import process from "node:process";

export const NGINX = "/usr/sbin/nginx";
export const NGINX_MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so";
export const NGINX_PACKAGES = ["nginx", "libnginx-mod-mail"];

const POLICY_RC = "/usr/sbin/policy-rc.d";
/** apt-get update + install: bounded, generous for a slow mirror. */
const INSTALL_TIMEOUT_MS = 10 * 60_000;

/** The files the bench needs from the packages that are not there. */
export function missingNginxFiles(files = [NGINX, NGINX_MAIL_MODULE]): string[] {
  return files.filter((f) => !existsSync(f));
}

/**
 * Installs nginx and its mail module with apt-get when either is missing
 * (as root, or through sudo). Throws one clear line when that is not
 * possible or fails.
 */
export function ensureNginx(log: (s: string) => void): void {
  const missing = missingNginxFiles();
  if (missing.length === 0) return;
  log(`nginx's mail proxy is missing (${missing.join(", ")}): installing ${NGINX_PACKAGES.join(" ")}`);
  const root = process.getuid?.() === 0;
  if (!root && spawnSync("sudo", ["-n", "true"]).status !== 0) {
    throw new Error(
      `${missing.join(", ")} missing and not root (no password-less sudo): ` +
        `apt-get install ${NGINX_PACKAGES.join(" ")}, then run the bench again`,
    );
  }
  const run = (args: string[]) => {
    const [cmd, argv] = root ? [args[0], args.slice(1)] : ["sudo", ["-n", ...args]];
    const r = spawnSync(cmd, argv, {
      stdio: ["ignore", "ignore", "pipe"],
      encoding: "utf8",
      timeout: INSTALL_TIMEOUT_MS,
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (r.status !== 0) {
      const why = r.error ? r.error.message : (r.stderr ?? "").trim().split("\n").slice(-3).join(" / ");
      throw new Error(`${args.join(" ")} failed: ${why}`);
    }
  };
  const addedPolicy = !existsSync(POLICY_RC);
  if (addedPolicy) {
    if (root) {
      writeFileSync(POLICY_RC, "#!/bin/sh\nexit 101\n");
      chmodSync(POLICY_RC, 0o755);
    } else {
      run(["sh", "-c", `printf '#!/bin/sh\\nexit 101\\n' > ${POLICY_RC} && chmod 755 ${POLICY_RC}`]);
    }
  }
  try {
    run(["apt-get", "update", "-q"]);
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", ...NGINX_PACKAGES]);
  } finally {
    if (addedPolicy) {
      if (root) rmSync(POLICY_RC, { force: true });
      else spawnSync("sudo", ["-n", "rm", "-f", POLICY_RC]);
    }
  }
  const still = missingNginxFiles();
  if (still.length > 0) throw new Error(`installed ${NGINX_PACKAGES.join(" ")}, but ${still.join(", ")} is still missing`);
  log(`installed: ${NGINX}, ${NGINX_MAIL_MODULE}`);
}
