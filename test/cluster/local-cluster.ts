// A one-node Slurm cluster and an sshd on 127.0.0.1, started in a temp folder for the integration
// test (scale-out.md, "Testing it on one Linux box"): munged as the munge user with a private
// socket, slurmctld + slurmd with a private slurm.conf (8 fake GPUs: gres files are links to
// /dev/null), and an sshd whose sessions get SLURM_CONF. Every wait is bounded; stop() kills only
// the daemons this helper started (by the pids they wrote).
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LocalCluster {
  root: string;
  sshConfigFile: string;
  /** Host alias whose key the server accepts. */
  host: string;
  /** Host alias whose key the server refuses. */
  badKeyHost: string;
  /** Host alias of a port where nothing listens. */
  closedPortHost: string;
  partition: string;
  slurmConf: string;
  stop(): void;
}

const binaries = [
  'munged',
  'slurmctld',
  'slurmd',
  'sbatch',
  'squeue',
  'scontrol',
  'scancel',
  'sinfo',
  'ssh',
  'sftp',
  'ssh-keygen',
  'runuser',
  'python3',
];

function which(program: string): string | null {
  const result = spawnSync('bash', ['-c', `command -v ${program} || ls /usr/sbin/${program} 2>/dev/null`], { encoding: 'utf8' });
  const found = result.stdout.trim().split('\n')[0];
  return found ? found : null;
}

/** Why the cluster cannot start here, or null when it can. */
export function clusterUnavailableReason(): string | null {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root to start munged, slurmd and sshd';
  const missing = binaries.filter((program) => !which(program));
  if (!existsSync('/usr/sbin/sshd')) missing.push('sshd');
  if (missing.length)
    return `missing ${missing.join(', ')} (install the Debian packages slurmctld slurmd slurm-client munge openssh-server openssh-client python3; .ci/run does)`;
  if (!existsSync('/etc/munge/munge.key')) return 'no /etc/munge/munge.key (the munge package creates it)';
  const munge = spawnSync('id', ['-u', 'munge']);
  if (munge.status !== 0) return 'no munge user (the munge package creates it)';
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function waitFor(what: string, seconds: number, probe: () => boolean, log?: string): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (probe()) return;
    await new Promise((resolveWait) => setTimeout(resolveWait, 200));
  }
  const tail = log && existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-8).join('\n') : '';
  throw new Error(`${what} did not come up within ${seconds} s${tail ? `; log tail:\n${tail}` : ''}`);
}

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export async function startLocalCluster(): Promise<LocalCluster> {
  const root = mkdtempSync(join(tmpdir(), 'vswin-cluster-'));
  chmodSync(root, 0o755);
  const node = hostname().split('.')[0];
  const dirs = {
    mungeRun: join(root, 'munge-run'),
    mungePrivate: join(root, 'munge-private'),
    slurm: join(root, 'slurm'),
    ssh: join(root, 'ssh'),
    gpu: join(root, 'gpu'),
  };
  for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true });
  mkdirSync(join(dirs.slurm, 'state'));
  mkdirSync(join(dirs.slurm, 'spool'));
  const mungeUid = Number(execFileSync('id', ['-u', 'munge'], { encoding: 'utf8' }).trim());
  const mungeGid = Number(execFileSync('id', ['-g', 'munge'], { encoding: 'utf8' }).trim());
  chmodSync(dirs.mungeRun, 0o755);
  chmodSync(dirs.mungePrivate, 0o700);
  copyFileSync('/etc/munge/munge.key', join(dirs.mungePrivate, 'munge.key'));
  chmodSync(join(dirs.mungePrivate, 'munge.key'), 0o600);
  for (const path of [dirs.mungeRun, dirs.mungePrivate, join(dirs.mungePrivate, 'munge.key')])
    chownSync(path, mungeUid, mungeGid);
  for (let i = 0; i < 8; i++) symlinkSync('/dev/null', join(dirs.gpu, `gpu${i}`));

  const pids: string[] = [];
  const started = { root, pids };
  const stop = () => stopDaemons(started);
  try {
    const socket = join(dirs.mungeRun, 'munge.socket');
    execFileSync(
      'runuser',
      [
        '-u',
        'munge',
        '--',
        'munged',
        `--socket=${socket}`,
        `--key-file=${join(dirs.mungePrivate, 'munge.key')}`,
        `--pid-file=${join(dirs.mungeRun, 'munged.pid')}`,
        `--log-file=${join(dirs.mungePrivate, 'munged.log')}`,
        `--seed-file=${join(dirs.mungePrivate, 'munged.seed')}`,
      ],
      { timeout: 10_000 },
    );
    pids.push(join(dirs.mungeRun, 'munged.pid'));
    await waitFor('munged', 10, () => existsSync(socket));

    const [controllerPort, nodePort, sshPort, closedPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const slurmConf = join(dirs.slurm, 'slurm.conf');
    writeFileSync(
      slurmConf,
      [
        'ClusterName=vswintest',
        `SlurmctldHost=${node}(127.0.0.1)`,
        `SlurmctldPort=${controllerPort}`,
        `SlurmdPort=${nodePort}`,
        'AuthType=auth/munge',
        'CredType=cred/munge',
        `AuthInfo=socket=${socket}`,
        'SlurmUser=root',
        'SlurmdUser=root',
        `StateSaveLocation=${join(dirs.slurm, 'state')}`,
        `SlurmdSpoolDir=${join(dirs.slurm, 'spool')}`,
        `SlurmctldPidFile=${join(dirs.slurm, 'slurmctld.pid')}`,
        `SlurmdPidFile=${join(dirs.slurm, 'slurmd.pid')}`,
        `SlurmctldLogFile=${join(dirs.slurm, 'slurmctld.log')}`,
        `SlurmdLogFile=${join(dirs.slurm, 'slurmd.log')}`,
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_Core',
        'JobCompType=jobcomp/filetxt',
        `JobCompLoc=${join(dirs.slurm, 'jobcomp.txt')}`,
        'AccountingStorageType=accounting_storage/none',
        'JobAcctGatherType=jobacct_gather/none',
        'MpiDefault=none',
        'ReturnToService=2',
        'SlurmdParameters=config_overrides',
        'GresTypes=gpu',
        'MinJobAge=600',
        'SchedulerParameters=sched_min_interval=100000',
        `NodeName=${node} NodeAddr=127.0.0.1 CPUs=16 RealMemory=1000 Gres=gpu:8 State=UNKNOWN`,
        `PartitionName=gpu Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
        '',
      ].join('\n'),
    );
    writeFileSync(join(dirs.slurm, 'gres.conf'), `NodeName=${node} Name=gpu File=${join(dirs.gpu, 'gpu[0-7]')}\n`);
    const slurmEnv = { ...process.env, SLURM_CONF: slurmConf };
    execFileSync('slurmctld', ['-f', slurmConf], { env: slurmEnv, timeout: 15_000 });
    pids.push(join(dirs.slurm, 'slurmctld.pid'));
    execFileSync('slurmd', ['-f', slurmConf], { env: slurmEnv, timeout: 15_000 });
    pids.push(join(dirs.slurm, 'slurmd.pid'));
    await waitFor(
      'the Slurm node',
      30,
      () => {
        const result = spawnSync('sinfo', ['-h', '-o', '%T'], { env: slurmEnv, encoding: 'utf8', timeout: 5000 });
        return result.status === 0 && /^idle/m.test(result.stdout);
      },
      join(dirs.slurm, 'slurmd.log'),
    );

    const key = (name: string) => {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dirs.ssh, name)]);
      return join(dirs.ssh, name);
    };
    const hostKey = key('host_key');
    const clientKey = key('client_key');
    const otherKey = key('other_key');
    writeFileSync(join(dirs.ssh, 'authorized_keys'), readFileSync(`${clientKey}.pub`));
    mkdirSync('/run/sshd', { recursive: true });
    const sshdConfig = join(dirs.ssh, 'sshd_config');
    writeFileSync(
      sshdConfig,
      [
        'ListenAddress 127.0.0.1',
        `Port ${sshPort}`,
        `HostKey ${hostKey}`,
        `PidFile ${join(dirs.ssh, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dirs.ssh, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'Subsystem sftp internal-sftp',
        `SetEnv SLURM_CONF=${slurmConf}`,
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
    execFileSync('/usr/sbin/sshd', ['-f', sshdConfig, '-E', join(dirs.ssh, 'sshd.log')], { timeout: 10_000 });
    pids.push(join(dirs.ssh, 'sshd.pid'));
    await waitFor('sshd', 10, () => existsSync(join(dirs.ssh, 'sshd.pid')), join(dirs.ssh, 'sshd.log'));

    const sshConfigFile = join(dirs.ssh, 'ssh_config');
    const hostBlock = (alias: string, port: number, identity: string) =>
      [
        `Host ${alias}`,
        '  HostName 127.0.0.1',
        `  Port ${port}`,
        '  User root',
        `  IdentityFile ${identity}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${join(dirs.ssh, 'known_hosts')}`,
        '  StrictHostKeyChecking accept-new',
        '',
      ].join('\n');
    writeFileSync(
      sshConfigFile,
      [
        hostBlock('testcluster', sshPort, clientKey),
        hostBlock('badkey', sshPort, otherKey),
        hostBlock('closedport', closedPort, clientKey),
      ].join('\n'),
    );
    return {
      root,
      sshConfigFile,
      host: 'testcluster',
      badKeyHost: 'badkey',
      closedPortHost: 'closedport',
      partition: 'gpu',
      slurmConf,
      stop,
    };
  } catch (error) {
    stop();
    throw error;
  }
}

function stopDaemons(started: { root: string; pids: string[] }): void {
  const slurmConf = join(started.root, 'slurm', 'slurm.conf');
  if (existsSync(slurmConf))
    spawnSync('scancel', ['--full', '--quiet', '--user=root'], { env: { ...process.env, SLURM_CONF: slurmConf }, timeout: 5000 });
  for (const file of [...started.pids].reverse()) {
    const pid = readPid(file);
    if (pid === null) continue;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 5000;
  for (const file of started.pids) {
    const pid = readPid(file);
    if (pid === null) continue;
    while (Date.now() < deadline) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      spawnSync('sleep', ['0.1']);
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // ended on SIGTERM
    }
  }
  rmSync(started.root, { recursive: true, force: true });
}

/**
 * Annotation files for the stand-in engine, which never opens a video: 16 empty files in 4
 * classes under WORK/videos, train.txt listing all of them and val.txt the first 4.
 */
export function writeStandInDataset(work: string): { train: string; val: string; root: string } {
  const videos = Array.from({ length: 16 }, (_, i) => `class${i % 4}/video${i}.mp4 ${i % 4}`);
  const train = join(work, 'train.txt');
  const val = join(work, 'val.txt');
  writeFileSync(train, `${videos.join('\n')}\n`);
  writeFileSync(val, `${videos.slice(0, 4).join('\n')}\n`);
  for (const line of videos) {
    const path = join(work, 'videos', line.split(' ')[0]);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, '');
  }
  return { train, val, root: join(work, 'videos') };
}
