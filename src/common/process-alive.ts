// Whether a process of this host still runs: what tells a dead writer's leftovers (a lock file, a temp
// file) from a live one's. EPERM means it exists but belongs to someone else.
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
