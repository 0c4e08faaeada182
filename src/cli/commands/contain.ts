import { join } from 'node:path';
import type { KeptChange } from '../../contain/overlay.ts';
import { applyKept, discard, type ReviewedRun, reviewableRuns, settleLate, showKept } from '../../contain/review.ts';
import { shownKept, shownKeptPath } from '../../contain/settled-report.ts';
import { shownJson, shownName } from '../../contain/shown-name.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { type CommandIO, usageError } from '../io.ts';
import { resolveHome } from '../../paths.ts';

export const contain: Command = {
  name: 'contain',
  usage: `keyway contain review [ID] [--apply | --discard] [--json] [--home DIR]

What \`keyway run --contain\` kept aside. A contained command's writes reach the host when it exits,
each judged: git's own data, the project's files, folders and links land; what git, a shell or a
program found on PATH would run later (a .git it made or moved, .git/config and the rest git reads
as configuration, a hidden file at the top of your home, anything in a folder on PATH, a FIFO or
device) is kept aside, in a folder in /var/tmp only you can read. With no ID, lists this home's runs
(keyway records each in data/contain/ when it starts), and
runs that never finished (keyway killed while the command ran: nothing of theirs reached the host).
With ID: that run's kept changes, each with why, and their digest. The command chose these names:
each is shown escaped (a control character, a bidirectional one or a byte that is not UTF-8 as
\\xNN or \\u{…}, a backslash as \\\\). --apply puts in place exactly what \`review ID\` last showed
(you have read them): if the kept changes, or the files they would put in place, differ from what
it showed, it applies nothing and says so; a name that is not UTF-8 is never put in place (it goes
with the run). For a run that never finished, --apply puts in place what its exit would have and
keeps the rest aside, to be reviewed like any run's.
--discard drops them. docs/containment.md says what is judged how.`,
  async run(argv, io) {
    const args = parse(argv, { apply: { type: 'boolean' }, discard: { type: 'boolean' } }, { review: 1 });
    const [sub, id, extra] = args.positionals;
    if (sub !== 'review' || extra !== undefined) throw usageError('usage: keyway contain review [ID] [--apply | --discard] [--json]');
    if (args.flag('apply') && args.flag('discard')) throw usageError('--apply or --discard, not both');
    const home = resolveHome(args.string('home'), io.env);
    const runs = reviewableRuns(home);
    if (id === undefined) {
      if (args.flag('apply') || args.flag('discard')) throw usageError('name the run: keyway contain review ID --apply (IDs: keyway contain review)');
      if (args.json) printJson(io, { runs: runs.map(describe) });
      else if (runs.length === 0) io.out('nothing kept aside: every contained run put its changes in place');
      else for (const run of runs) io.out(summaryLine(run));
      return 0;
    }
    const run = runs.find((r) => r.id === id);
    if (run === undefined) {
      io.err(`keyway contain review: no run ${shownName(id)} (${runs.length === 0 ? 'none is kept aside' : `runs: ${runs.map((r) => r.id).join(', ')}`})`);
      return 1;
    }
    if (run.running) {
      io.err(`keyway contain review: run ${id} is still running (pid ${run.record.pid}): its changes are settled when it exits`);
      return 1;
    }
    if (args.flag('discard')) {
      discard(home, run);
      if (args.json) printJson(io, { id, discarded: true });
      else io.out(`discarded run ${id}'s kept changes`);
      return 0;
    }
    if (args.flag('apply') && run.kept === undefined) {
      // First the judge, as at the run's exit; what it keeps aside is then reviewed like any run's.
      const late = settleLate(home, run);
      if (args.json) printJson(io, { id, applied: late.applied, kept: late.kept.map(keptJson) });
      else {
        io.out(`run ${id} never finished: put in place the ${late.applied} changes its exit would have`);
        if (late.kept.length > 0)
          io.out(`${late.kept.length} kept aside, as its exit would have: \`keyway contain review ${id}\` lists them, --apply again puts them in place`);
      }
      return 0;
    }
    if (args.flag('apply')) {
      const result = applyKept(home, run);
      if ('changedSinceShown' in result) {
        io.err(
          `keyway contain review: nothing applied: run ${id}'s kept changes (digest ${result.digest}) are not what \`keyway contain review ${id}\` last showed${run.shown === undefined ? ' (it has not shown them yet)' : ` (digest ${run.shown})`}: read them again with \`keyway contain review ${id}\``,
        );
        return 1;
      }
      const { applied, failed, left, digest } = result;
      if (args.json) printJson(io, { id, digest, applied, failed: failed.map(shownName), left: left.map(keptJson) });
      else io.out(`put in place ${applied} kept change${applied === 1 ? '' : 's'} of run ${id}, as shown (digest ${digest})`);
      for (const k of left) io.err(`keyway contain review: not put in place (gone with the run): ${shownKept(k)}`);
      for (const line of failed) io.err(`keyway contain review: not applied: ${shownName(line)}`);
      return failed.length === 0 ? 0 : 1;
    }
    if (run.kept === undefined) {
      if (args.json) printJson(io, describe(run));
      else io.out(summaryLine(run));
      return 0;
    }
    const { digest } = showKept(home, run);
    if (args.json) printJson(io, { ...describe(run), digest });
    else {
      io.out(summaryLine(run));
      for (const k of run.kept) io.out(`  ${shownKept(k)}`);
      io.out(`digest ${digest}; the command's own copies are in ${shownName(run.scratch)}`);
      io.out(`\`keyway contain review ${id} --apply\` puts exactly these in place (nothing, if they have changed since), --discard drops them`);
    }
    return 0;
  },
};

function summaryLine(run: ReviewedRun): string {
  const when = new Date(run.record.startedMs).toISOString();
  const workdir = shownName(run.record.workdir);
  if (run.running) return `${run.id}  ${when}  ${workdir}  running`;
  if (run.kept === undefined) return `${run.id}  ${when}  ${workdir}  never finished: none of its changes reached the host`;
  return `${run.id}  ${when}  ${workdir}  ${run.kept.length} change${run.kept.length === 1 ? '' : 's'} kept aside`;
}

function describe(run: ReviewedRun) {
  return {
    id: run.id,
    started: new Date(run.record.startedMs).toISOString(),
    workdir: run.record.workdir,
    state: run.running ? 'running' : run.kept === undefined ? 'unfinished' : 'kept',
    folder: run.scratch,
    kept: (run.kept ?? []).map(keptJson),
  };
}

/** A kept change in --json: its path as it is, or, where its name is not UTF-8, as shown (`utf8: false`). */
function keptJson(k: KeptChange) {
  return { path: k.raw === undefined ? join(k.root, k.rel) : shownKeptPath(k), kind: k.kind, why: k.why, ...(k.raw === undefined ? {} : { utf8: false }) };
}

/** JSON for a person's terminal too: what would not pass in a name is written as JSON's \u escape (contain/shown-name.ts). */
function printJson(io: CommandIO, value: unknown): void {
  io.out(shownJson(value));
}
