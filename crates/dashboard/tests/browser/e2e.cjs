// The dashboard in headless Chromium, driven by playwright-core: the seed page's steps as a person
// does them in a browser, a screenshot of each screen, and an axe-core check on each (no serious
// or critical violations). Run by crates/app/tests/dashboard_browser.rs, which starts leadwire
// and the Salesforce emulator and passes what this needs in the environment:
//
//   LW_BASE           leadwire's URL (dashboard and REST API)
//   LW_EMAIL/LW_PASSWORD  a dashboard user (editor or admin)
//   LW_API_KEY        a REST API key with every permission
//   LW_LEAD_URL       the emulator's Lead endpoint
//   LW_TOKEN_HEADER   the seed's Authorization header (connected_content to the emulator)
//   LW_SHOTS          where screenshots go (under target/)
//   LW_CHROMIUM       the browser (Debian's /usr/bin/chromium)
//
// Exits 0 when every step passed; otherwise prints the step that failed and exits 1.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env("LW_BASE");
const SHOTS = env("LW_SHOTS");
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
// Steps wait on what the page shows, never on time; this only keeps a broken run from hanging.
const GUARD = 60_000;

let step = "start";
function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** axe-core on the page as it is: serious and critical violations fail the run. */
async function accessible(page, name) {
  // Evaluated through the DevTools protocol, which the pages' Content-Security-Policy (no
  // inline scripts) does not govern; an inline <script> would be refused, as it should be.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  console.log(`axe ${name}: ${result.length} violations, ${bad.length} serious or critical`);
  check(bad.length === 0, `axe on ${name}: ${JSON.stringify(bad, null, 2)}`);
}

async function screen(page, name) {
  await shot(page, name);
  await accessible(page, name);
}

async function api(pathname, body) {
  const response = await fetch(`${BASE}${pathname}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${env("LW_API_KEY")}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  check(response.status < 300, `${pathname} answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

/** Fills key/value rows, pressing the form's "add a row" button between them. */
async function fillRows(page, rows, keyId, valueId, addValue) {
  for (let i = 0; i < rows.length; i++) {
    await page.fill(`#${keyId}-${i}`, rows[i][0]);
    await page.fill(`#${valueId}-${i}`, rows[i][1]);
    if (i + 1 < rows.length && !(await page.$(`#${keyId}-${i + 1}`))) {
      // The form comes back with what was typed and one more empty row.
      await page.click(`button[value=${addValue}]`);
      await page.waitForSelector(`#${keyId}-${i + 1}`);
    }
  }
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "leadwire-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: env("LW_CHROMIUM"),
    headless: true,
    locale: "en-US",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context.setDefaultTimeout(GUARD);
  const page = context.pages()[0] || (await context.newPage());
  // Anything the pages' Content-Security-Policy refuses (a script, style or connection from
  // elsewhere, or inline) fails the run.
  const refused = [];
  page.on("console", (msg) => {
    if (msg.type() === "error" && /Content Security Policy/i.test(msg.text())) refused.push(msg.text());
  });
  try {
    step = "sign in";
    await page.goto(`${BASE}/dashboard/templates`);
    check(page.url().includes("/dashboard/login"), `signed out, sent to sign in: ${page.url()}`);
    await screen(page, "01-sign-in");
    await page.fill("#email", env("LW_EMAIL"));
    await page.fill("#password", env("LW_PASSWORD"));
    await Promise.all([page.waitForURL("**/dashboard/templates"), page.click("button[type=submit]")]);
    await screen(page, "02-templates");

    step = "compose the seed's Create Lead template";
    await page.click("a[href='/dashboard/templates/new']");
    await page.waitForURL("**/dashboard/templates/new");
    await page.fill("#name", "Create Lead (browser)");
    await page.fill("#url", env("LW_LEAD_URL"));
    await page.selectOption("#method", "POST");
    await fillRows(
      page,
      [
        ["firstName", "{{${first_name}}}"],
        ["lastName", "{{${last_name}}}"],
        ["email", "{{${email_address}}}"],
        ["company", "{{custom_attribute.${company}}}"],
      ],
      "body-key",
      "body-value",
      "add-body-row",
    );
    await fillRows(
      page,
      [
        ["Authorization", env("LW_TOKEN_HEADER")],
        ["Content-Type", "application/json"],
      ],
      "header-name",
      "header-value",
      "add-header-row",
    );
    await screen(page, "03-compose");

    step = "preview it for a user";
    await page.fill(
      "#preview-user",
      JSON.stringify({
        external_id: "preview-user",
        first_name: "Jo",
        last_name: "Park",
        email: "jo@example.com",
        custom_attributes: { company: "Acme" },
      }),
    );
    await Promise.all([page.waitForSelector("#preview"), page.click("button[value=preview]")]);
    const preview = await page.textContent("#preview");
    check(preview.includes('"firstName":"Jo"') && preview.includes("Acme"), `preview: ${preview}`);
    check(
      !preview.includes("connected_content") && preview.includes("[REDACTED]"),
      `the Authorization header is rendered, and its token redacted: ${preview}`,
    );
    await screen(page, "04-preview");

    step = "the preview follows edits live";
    await page.fill("#body-value-1", "{{${last_name}}} (live)");
    await page.waitForFunction(() =>
      document.getElementById("preview").textContent.includes("Park (live)"),
    );

    step = "test-send it to the emulator";
    await Promise.all([page.waitForSelector("#response-status"), page.click("button[value=test-send]")]);
    const status = (await page.textContent("#response-status")).trim();
    check(status === "201", `test send answered ${status}`);
    await screen(page, "05-test-send");

    step = "save it";
    await Promise.all([page.waitForURL("**saved=1"), page.click("button.primary[value=save]")]);
    check(await page.isVisible("#saved"), "the saved notice shows");

    step = "create and start the add-an-email-address campaign";
    await page.click("a[href='/dashboard/campaigns']");
    await page.waitForURL("**/dashboard/campaigns");
    await page.click("a[href='/dashboard/campaigns/new']");
    await page.waitForURL("**/dashboard/campaigns/new");
    await page.fill("#name", "New lead (browser)");
    await page.selectOption("#trigger", "email_added");
    await page.selectOption("#template", "Create Lead (browser)");
    await screen(page, "06-campaign-builder");
    await Promise.all([page.waitForSelector("#campaign-status"), page.click("button.primary")]);
    await Promise.all([
      page.waitForURL("**/dashboard/campaigns"),
      page.click("button[data-to=active]"),
    ]);
    check(
      (await page.$$("tr[data-status=active]")).length === 1,
      "the campaign is listed as active",
    );
    await screen(page, "07-campaigns");

    step = "the lead appears live in the activity log";
    await page.goto(`${BASE}/dashboard/activity`);
    await screen(page, "08-activity-before");
    const delivered = page.waitForSelector("#delivery-rows tr[data-state=delivered]");
    await api("/users/track", {
      attributes: [
        {
          external_id: "browser-lead",
          first_name: "Min",
          last_name: "Kim",
          email: "min@example.com",
          company: "Acme",
        },
      ],
    });
    await delivered;
    const row = await page.textContent("#delivery-rows tr[data-state=delivered]");
    check(row.includes("browser-lead") && row.includes("201"), `delivered row: ${row}`);
    await screen(page, "09-activity-live");
    await page.click("a[href='/dashboard/deliveries']");
    await page.waitForSelector("#totals");
    check(Number(await page.getAttribute("#totals", "data-delivered")) >= 1, "the charts count the lead");
    await screen(page, "09b-deliveries");

    step = "build the lead-scoring Canvas in the step editor";
    await page.goto(`${BASE}/dashboard/canvases`);
    await page.click("a[href='/dashboard/canvases/new']");
    await page.waitForURL("**/dashboard/canvases/new");
    await page.fill("#name", "Lead Scoring Canvas");
    await page.selectOption("#trigger", "attribute_changed");
    await page.fill("#trigger-name", "lead_score");
    await page.fill("#reentry", "0");
    await page.fill("#step-0-id", "threshold");
    await page.fill("#step-0-name", "MQL Threshold check");
    await page.fill("#step-0-group", "MQL Threshold");
    await page.fill(
      "#step-0-filter",
      JSON.stringify({ all: [{ attribute: "lead_stage", equals: "Lead" }, { attribute: "lead_score", greater_than: 50 }] }),
    );
    await page.fill("#step-0-next", "mark_mql");
    await page.click("button[value=add-step]");
    await page.waitForSelector("#step-1-id");
    await page.fill("#step-1-id", "mark_mql");
    await page.fill("#step-1-name", "Mark MQL");
    await page.fill("#step-1-attribute", "lead_stage");
    await page.fill("#step-1-value", "MQL");
    await screen(page, "10a-canvas-builder");
    await Promise.all([page.waitForSelector("#canvas-status"), page.click("button.primary[value=save]")]);
    const canvasUrl = page.url();
    await page.click("button[data-to=active]");
    // Started: the page comes back with Pause in place of Start.
    await page.waitForSelector("button[data-to=paused]");

    step = "the lead-scoring Canvas: a user passes its steps";
    await api("/users/track", {
      attributes: [{ external_id: "browser-lead", lead_stage: "Lead", lead_score: 75 }],
    });
    await page.goto(canvasUrl);
    // The engine works in the background: reload until the user has passed the last step (the
    // guard bounds it; nothing waits on a clock).
    for (let reloads = 0; ; reloads++) {
      const passed = await page.getAttribute("g.step[data-step=mark_mql]", "data-passed");
      if (passed === "1") break;
      check(reloads < 1000, "the user never passed the Canvas's last step");
      await page.reload();
    }
    check(
      (await page.getAttribute("g.step[data-step=threshold]", "data-passed")) === "1",
      "the user passed the threshold check",
    );
    await screen(page, "10-canvas");

    step = "paste the German seed body and see the linter's suggestion";
    await page.goto(`${BASE}/dashboard/templates/new`);
    await page.fill("#name", "Lead erstellen");
    await page.fill("#url", "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/");
    await fillRows(
      page,
      [
        ["Vorname", "{{${first_name}}}"],
        ["Nachname", "{{${last_name}}}"],
        ["E-Mail", "{{${email_address}}}"],
        ["Unternehmen", "{{custom_attribute.${company}}}"],
      ],
      "body-key",
      "body-value",
      "add-body-row",
    );
    await Promise.all([page.waitForSelector("#preview"), page.click("button[value=preview]")]);
    const note = await page.textContent("#body-0-notes");
    check(note.includes("FirstName"), `the note under Vorname: ${note}`);
    check(
      (await page.getAttribute("#body-value-0", "aria-describedby")) === "body-0-notes",
      "the field points at its note",
    );
    await screen(page, "11-german-lint");

    step = "switch to Korean";
    await page.click("a[hreflang=ko]");
    await page.waitForFunction(() => document.documentElement.lang === "ko");
    await page.goto(`${BASE}/dashboard/templates`);
    check((await page.getAttribute("html", "lang")) === "ko", "the page says it is Korean");
    const nav = await page.textContent("header nav");
    check(nav.includes("메시지 활동 로그") && nav.includes("웹훅 템플릿"), `Korean navigation: ${nav}`);
    check((await page.textContent("h1")).includes("웹훅 템플릿"), "Korean heading");
    await screen(page, "12-korean-templates");
    await page.goto(`${BASE}/dashboard/activity`);
    check((await page.textContent("h1")).includes("메시지 활동 로그"), "Korean activity log");
    await screen(page, "13-korean-activity");

    step = "keyboard: the skip link is the first stop and lands on the content";
    await page.goto(`${BASE}/dashboard/templates`);
    await page.keyboard.press("Tab");
    check(
      (await page.evaluate(() => document.activeElement && document.activeElement.className)) === "skip",
      "the first Tab reaches the skip link",
    );
    await page.keyboard.press("Enter");
    check(
      (await page.evaluate(() => document.activeElement && document.activeElement.id)) === "main",
      "Enter on the skip link moves focus to the content",
    );
    check(refused.length === 0, `refused by the Content-Security-Policy: ${refused.join("; ")}`);
    console.log("every step passed");
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`FAILED at step "${step}": ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
