/**
 * CPU accounting for the relay bench, from /proc: cores used by given processes over an interval, by a whole
 * Postfix instance (every process whose environment names its configuration directory, plus what its master has
 * reaped), and by the host.
 */
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts in 1/100 s on every architecture Node runs on

function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from the 3rd (state) on
  } catch {
    return null;
  }
}

/** utime + stime of a process, in clock ticks (0 once it is gone). */
export function cpuTicks(pid: number): number {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : 0;
}

/** cutime + cstime: what a process's reaped children used. */
function childTicks(pid: number): number {
  const f = statFields(pid);
  return f ? Number(f[13]) + Number(f[14]) : 0;
}

/**
 * CPU ticks of one Postfix instance, by pid: its daemons carry MAIL_CONFIG=<configDir> in their environment
 * (Postfix's import_environment); a daemon that exited is counted through its master's cutime/cstime.
 */
export function postfixTicks(configDir: string): Map<number, number> {
  const want = `MAIL_CONFIG=${configDir}\0`;
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').includes(want)) continue;
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      ticks.set(pid, cpuTicks(pid) + (comm === 'master' ? childTicks(pid) : 0));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return ticks;
}

/** Busy and total jiffies of the whole host (first line of /proc/stat). */
export function hostTicks(): { busy: number; total: number } {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const n = v.map(Number);
  const idle = n[3]! + n[4]!; // idle + iowait
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

export interface CpuMeter {
  /** Cores used since the meter started: per named part, and the host's busy cores. */
  stop(): { parts: Record<string, number>; host: number };
}

/**
 * Starts measuring. `parts` maps a name to a sampler returning ticks by pid (one pid for our servers, many for a
 * Postfix instance); a pid absent at the start counts from 0.
 */
export function startCpuMeter(parts: Record<string, () => Map<number, number>>): CpuMeter {
  const before = Object.fromEntries(Object.entries(parts).map(([name, sample]) => [name, sample()]));
  const host = hostTicks();
  const at = process.hrtime.bigint();
  return {
    stop() {
      const seconds = Number(process.hrtime.bigint() - at) / 1e9;
      const out: Record<string, number> = {};
      for (const [name, sample] of Object.entries(parts)) {
        let t = 0;
        for (const [pid, ticks] of sample()) t += Math.max(0, ticks - (before[name]!.get(pid) ?? 0));
        out[name] = t / CLK_TCK / seconds;
      }
      const h = hostTicks();
      return { parts: out, host: (h.busy - host.busy) / Math.max(1, h.total - host.total) };
    },
  };
}

/** A sampler for one process. */
export const processTicks = (pid: number) => () => new Map([[pid, cpuTicks(pid)]]);
