// The timeout of every test that names none: a hang fails that test, by name, within minutes (the
// runner's --test-timeout bounds a whole file as well). Generous, since CI is a loaded 2-core machine.
export const TEST_TIMEOUT_MS = 180_000;
