import type { ChildProcess } from 'node:child_process';
import type { Server } from 'node:net';
import type { ContainedServer } from './contained-server.ts';
import type { ContainSpec, InsideMessage, KeywayMessage } from './inside.ts';
import { removeScratch } from './overlay.ts';
import { originalPortReader } from './original-port.ts';
import { forgetRun, recordRun } from './review.ts';
import { droppedReport } from './dropped-report.ts';
import { settledReport } from './settled-report.ts';
import { shownName } from './shown-name.ts';

// What inside.ts says over the IPC channel, heard from the moment it has the spec. The spec goes
// before the run's keyway is up, so the namespaces are set up while it starts; the listeners the
// chain hands over wait here (nothing inside can dial them before `ready`) until `serveWith` gives
// them to the keyway and, once all are in, says `ready`: the command never runs before its keyway
// serves. A keyway that fails to start: `discard` undoes the run's record and scratch folder.

export interface ChainMessages {
  /** The keyway is up (and the start line written, if any): hand it the listeners, then `ready`. */
  serveWith(running: ContainedServer): void;
  /** The run never started its command: its record and scratch folder go (call once the chain has exited). */
  discard(): void;
  /** All listeners were handed over and `ready` sent. */
  readonly started: boolean;
  /** inside.ts said it failed. */
  readonly failedInside: boolean;
}

export function hearChain(
  child: ChildProcess,
  spec: ContainSpec,
  options: { home: string; agent: string | undefined; err(line: string): void },
): ChainMessages {
  const waiting: Array<{ handle: Server; port: number | undefined; pid: number }> = [];
  let allHanded = false;
  let running: ContainedServer | undefined;
  let scratch: string | undefined;
  let started = false;
  let failedInside = false;
  const accept = (server: ContainedServer, listener: (typeof waiting)[number]) => {
    // The catch-all reads the port each connection was dialled to from this namespace's conntrack table, to name it in a refusal.
    const dialled = listener.port === undefined ? originalPortReader(listener.pid) : undefined;
    server.acceptRedirected(listener.handle, options.agent, { port: listener.port, served: spec.ports, ...(dialled ? { dialled } : {}) });
  };
  const readyIfAll = () => {
    if (running === undefined || !allHanded || started) return;
    for (const listener of waiting.splice(0)) accept(running, listener);
    started = true;
    child.send({ kind: 'ready' } satisfies KeywayMessage);
  };
  child.on('message', (message: InsideMessage, handle: unknown) => {
    if (message.kind === 'listening' && handle) {
      waiting.push({ handle: handle as Server, port: message.port ?? undefined, pid: message.pid });
      if (message.last) allHanded = true;
      readyIfAll();
    } else if (message.kind === 'failed') {
      failedInside = true;
      // A reason may quote a name the command chose (a settle that failed on it): shown escaped.
      options.err(`keyway: contain_unavailable: ${shownName(message.reason)}`);
    } else if (message.kind === 'overlay') {
      scratch = message.scratch;
      recordRun(options.home, message.scratch, message.record);
    } else if (message.kind === 'settled') {
      if (message.kept.length === 0) forgetRun(options.home, message.scratch);
      for (const line of settledReport(message)) options.err(line);
      if (message.dropped !== undefined) for (const line of droppedReport(message.dropped)) options.err(line);
    }
  });
  child.send({ kind: 'spec', spec } satisfies KeywayMessage);
  return {
    serveWith(server) {
      running = server;
      readyIfAll();
    },
    discard() {
      for (const listener of waiting.splice(0)) listener.handle.close();
      if (scratch === undefined) return;
      // The chain is gone, and its mount namespace with it: the scratch folder holds empty layers.
      forgetRun(options.home, scratch);
      removeScratch(scratch);
    },
    get started() {
      return started;
    },
    get failedInside() {
      return failedInside;
    },
  };
}
