import { join } from 'node:path';
import { applyKept, discard, type ReviewedRun, reviewableRuns, settleLate } from '../../contain/review.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { printJson, usageError } from '../io.ts';
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
With ID: that run's kept changes, each with why. --apply puts them in place (you have read them);
for a run that never finished, --apply puts in place what its exit would have and keeps the rest
aside, to be reviewed like any run's.
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
      io.err(`keyway contain review: no run ${id} (${runs.length === 0 ? 'none is kept aside' : `runs: ${runs.map((r) => r.id).join(', ')}`})`);
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
      if (args.json) printJson(io, { id, applied: late.applied, kept: late.kept.map((k) => ({ path: join(k.root, k.rel), kind: k.kind, why: k.why })) });
      else {
        io.out(`run ${id} never finished: put in place the ${late.applied} changes its exit would have`);
        if (late.kept.length > 0)
          io.out(`${late.kept.length} kept aside, as its exit would have: \`keyway contain review ${id}\` lists them, --apply again puts them in place`);
      }
      return 0;
    }
    if (args.flag('apply')) {
      const { applied, failed } = applyKept(home, run);
      if (args.json) printJson(io, { id, applied, failed });
      else io.out(`put in place ${applied} kept change${applied === 1 ? '' : 's'} of run ${id}`);
      for (const line of failed) io.err(`keyway contain review: not applied: ${line}`);
      return failed.length === 0 ? 0 : 1;
    }
    if (args.json) printJson(io, describe(run));
    else {
      io.out(summaryLine(run));
      for (const k of run.kept ?? []) io.out(`  ${k.kind === 'deleted' ? 'deleted ' : ''}${join(k.root, k.rel)}${k.kind === 'dir' ? '/' : ''}: ${k.why}`);
      io.out(`the command's own copies are in ${run.scratch}; \`keyway contain review ${id} --apply\` puts them in place, --discard drops them`);
    }
    return 0;
  },
};

function summaryLine(run: ReviewedRun): string {
  const when = new Date(run.record.startedMs).toISOString();
  if (run.running) return `${run.id}  ${when}  ${run.record.workdir}  running`;
  if (run.kept === undefined) return `${run.id}  ${when}  ${run.record.workdir}  never finished: none of its changes reached the host`;
  return `${run.id}  ${when}  ${run.record.workdir}  ${run.kept.length} change${run.kept.length === 1 ? '' : 's'} kept aside`;
}

function describe(run: ReviewedRun) {
  return {
    id: run.id,
    started: new Date(run.record.startedMs).toISOString(),
    workdir: run.record.workdir,
    state: run.running ? 'running' : run.kept === undefined ? 'unfinished' : 'kept',
    folder: run.scratch,
    kept: (run.kept ?? []).map((k) => ({ path: join(k.root, k.rel), kind: k.kind, why: k.why })),
  };
}
