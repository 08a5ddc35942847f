// Launches Debian's Chromium (/usr/bin/chromium, installed by scripts/setup; CHROMIUM
// overrides) for the browser tests: playwright-core never downloads a browser.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // Playwright adds --headless, --no-sandbox (as root) and a fresh profile directory;
    // the rest keep Chromium from reaching for Google's hosts on a closed network.
    args: [
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
