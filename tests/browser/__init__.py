"""Browser tests: the web page in headless Chromium (Debian's), driven by Playwright."""
