#!/usr/bin/env python3
"""The steward console in a real browser (headless Chromium driven by Selenium), on the local stack
that `mdm local console` serves (tests/console-check.sh starts it with the sample data).

    tests/console_browser.py http://127.0.0.1:PORT SCREENSHOT_DIR

Resolves a review with Link, splits a golden record, pins a value and sees a 412 reload, checking
each result through the API; a record whose values are markup is shown as text and runs nothing.
Saves screenshots of the queue and of a golden record page into SCREENSHOT_DIR.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BASE, SHOTS = sys.argv[1].rstrip("/"), sys.argv[2]
HOSTILE = '<img src=x onerror="window.__xss=1">'
results = []


def api(method, path, body=None, if_match=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if if_match is not None:
        req.add_header("if-match", f'"{if_match}"')
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_for(fn, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def check(name, fn):
    try:
        fn()
        results.append((name, None))
    except Exception as e:  # noqa: BLE001 - every failure is reported with its test
        results.append((name, f"{type(e).__name__}: {e}"))


# A record whose values are markup: the name (normalised to plain words) and an e-mail address
# that fails validation and is kept raw, exactly as sent.
hostile = {"entityType": "customer", "sourceSystem": "crm", "sourceId": "x-hostile", "sourceSeq": 1,
           "attributes": {"given_name": HOSTILE, "family_name": "Mallory", "email": HOSTILE}}
status, body = api("POST", "/v1/records", {"records": [hostile]})
assert status == 202, (status, body)
wait_for(lambda: api("GET", "/v1/xref/customer/crm/x-hostile")[0] == 200, "the hostile record's golden record")

options = webdriver.ChromeOptions()
options.binary_location = os.environ.get("MDM_CHROMIUM", "/usr/bin/chromium")
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--disable-gpu"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service(os.environ.get("MDM_CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
# The page re-renders a section when its data arrives: an element found just before is stale, and
# the next poll finds the new one. On a loaded machine (the emulator busy with the background
# rounds) the data can take a while.
wait = WebDriverWait(driver, 60, ignored_exceptions=(StaleElementReferenceException,))


def status_text():
    return driver.find_element(By.ID, "status").text


def wait_status(fragment):
    wait.until(lambda d: fragment in d.find_element(By.ID, "status").text)


def reason(text):
    box = wait.until(EC.presence_of_element_located((By.ID, "reason")))
    box.clear()
    box.send_keys(text)


def golden_on_page():
    heading = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#view h2"))).text
    return heading.removeprefix("Golden record ").strip()


state = {}


def queue_lists_open_tasks_oldest_first():
    driver.get(BASE + "/console")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#queue tbody tr")))
    rows = driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    status_code, page = api("GET", "/v1/reviews?entity=customer&status=open&limit=100")
    assert status_code == 200
    assert [r.get_attribute("data-task") for r in rows] == [t["taskId"] for t in page["items"]], "the API's order"
    state["task"] = page["items"][0]
    driver.save_screenshot(os.path.join(SHOTS, "console-queue.png"))


def link_resolves_the_review():
    task = state["task"]
    driver.find_element(By.CSS_SELECTOR, f'#queue tr[data-task="{task["taskId"]}"] button').click()
    wait.until(EC.presence_of_element_located((By.ID, "compare")))
    cells = driver.find_elements(By.CSS_SELECTOR, "#compare thead th")
    assert len(cells) == 2 + len(task["candidates"]), "record and each candidate side by side"
    reason("same person: checked the order history")
    driver.find_element(By.ID, "link").click()
    wait_status("Linked")
    code, resolved = api("GET", "/v1/reviews?entity=customer&status=resolved&limit=100")
    mine = [t for t in resolved["items"] if t["taskId"] == task["taskId"]]
    assert mine and mine[0]["resolution"]["decision"] == "link", mine
    assert mine[0]["resolution"]["reason"] == "same person: checked the order history"
    code, xref = api("GET", f'/v1/xref/customer/{task["record"]["system"]}/{task["record"]["sourceId"]}')
    assert xref["goldenId"] == mine[0]["resolution"]["goldenId"] or xref["goldenId"] == golden_on_page()
    state["golden"] = golden_on_page()


def split_moves_members_out():
    golden = state["golden"]
    code, before = api("GET", f"/v1/golden/customer/{golden}")
    assert len(before["sources"]) >= 2, before["sources"]
    leaving = before["sources"][-1]
    driver.save_screenshot(os.path.join(SHOTS, "console-golden.png"))
    row = driver.find_element(By.CSS_SELECTOR,
                              f'#members tr[data-system="{leaving["system"]}"][data-source-id="{leaving["sourceId"]}"]')
    row.find_element(By.CSS_SELECTOR, "input.member").click()
    reason("two people: different birth dates on their ids")
    driver.find_element(By.ID, "split").click()
    wait_status("Split")
    code, xref = api("GET", f'/v1/xref/customer/{leaving["system"]}/{leaving["sourceId"]}')
    assert code == 200 and xref["goldenId"] != golden, xref
    code, after = api("GET", f"/v1/golden/customer/{golden}")
    assert leaving not in after["sources"] and after["version"] > before["version"]


def pin_sets_the_value_and_a_stale_page_reloads():
    golden = state["golden"]
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#attributes tr[data-attribute="given_name"]')))
    row = driver.find_element(By.CSS_SELECTOR, '#attributes tr[data-attribute="given_name"]')
    box = row.find_element(By.CSS_SELECTOR, "input")
    box.clear()
    box.send_keys("Annabel")
    reason("the customer's preferred name")
    row.find_element(By.CSS_SELECTOR, "button.pin").click()
    wait_status("Pinned given_name")
    code, g = api("GET", f"/v1/golden/customer/{golden}")
    assert g["attributes"]["given_name"]["rule"] == "steward_pin", g["attributes"]["given_name"]
    assert [p["attribute"] for p in g["pins"]] == ["given_name"] and g["pins"][0]["value"] == "annabel"
    # Someone else changes the record behind the page: the next action gets 412 and the page reloads.
    code, _ = api("PUT", f"/v1/golden/customer/{golden}/pins/family_name", {"value": "Other", "reason": "elsewhere"},
                  if_match=g["version"])
    assert code == 200, code
    row = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#attributes tr[data-attribute="given_name"]')))
    reason("a second try")
    row.find_element(By.CSS_SELECTOR, "button.unpin").click()
    wait_status("Changed meanwhile")
    wait.until(lambda d: "pinned by" in d.find_element(By.CSS_SELECTOR, '#attributes tr[data-attribute="family_name"]').text)
    code, g2 = api("GET", f"/v1/golden/customer/{golden}")
    assert {p["attribute"] for p in g2["pins"]} == {"given_name", "family_name"}, "the stale unpin changed nothing"


def markup_in_values_is_text():
    driver.get(BASE + "/console")
    # The page opens on the review queue: once it is shown, a record opened now is not replaced by it.
    wait_status("open review task")
    driver.find_element(By.ID, "source-system").send_keys("crm")
    driver.find_element(By.ID, "source-id").send_keys("x-hostile")
    driver.find_element(By.CSS_SELECTOR, "#open-source button").click()
    cell = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#attributes tr[data-attribute="email"] td.value')))
    assert cell.text.splitlines()[0] == HOSTILE, cell.text
    assert "failed validation" in cell.text
    assert driver.find_elements(By.CSS_SELECTOR, "#view img") == [], "no element made from a value"
    assert driver.execute_script("return window.__xss === undefined"), "the onerror handler ran"
    policy = urllib.request.urlopen(BASE + "/console", timeout=10).headers.get("content-security-policy")
    assert policy and policy.startswith("default-src 'self'"), policy


try:
    check("the queue lists the open tasks, oldest first", queue_lists_open_tasks_oldest_first)
    check("Link resolves a review (checked through the API)", link_resolves_the_review)
    check("a split moves the chosen member out (checked through the API)", split_moves_members_out)
    check("a pin sets the value; a page changed meanwhile gets 412 and reloads", pin_sets_the_value_and_a_stale_page_reloads)
    check("markup in source values is shown as text and runs nothing", markup_in_values_is_text)
finally:
    driver.quit()
for name, err in results:
    print(f"{'ok  ' if err is None else 'FAIL'} {name}" + ("" if err is None else f": {err}"))
failed = sum(1 for _, e in results if e is not None)
print(f"console: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
