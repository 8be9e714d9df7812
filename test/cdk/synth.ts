/**
 * Shared by the CDK tests: builds the app exactly as `cdk synth` does (cdk.json feature flags +
 * cdk/app.ts), with Lambda bundling skipped, and synthesizes it once per call.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { buildApp } from '../../cdk/app.ts';
import type { KeyspaceLeaderStack } from '../../cdk/keyspace-leader-stack.ts';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const cdkJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
  context?: Record<string, unknown>;
};

/**
 * A synthesized resource's properties. The template JSON is untyped; tests walk it directly and
 * assert on the values they find, so this is the one deliberate escape from the type checker.
 */
// biome-ignore lint/suspicious/noExplicitAny: untyped CloudFormation JSON, narrowed by assertions
export type CfnProps = any;

export interface Synthesized {
  readonly app: App;
  readonly stack: KeyspaceLeaderStack;
  readonly template: Template;
  readonly json: Record<string, unknown> & {
    Resources: Record<string, { Type: string; Properties?: CfnProps }>;
  };
  readonly assembly: CloudAssembly;
}

/** An App with cdk.json's context, `extraContext` on top, and no Lambda bundling. */
export function buildTestApp(
  extraContext: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
): { app: App; stack: KeyspaceLeaderStack } {
  const app = new App({
    outdir: mkdtempSync(path.join(os.tmpdir(), 'kl-cdk-')),
    context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [], ...extraContext },
  });
  const stack = buildApp(app, env);
  return { app, stack };
}

export function synthesize(
  extraContext: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
): Synthesized {
  const { app, stack } = buildTestApp(extraContext, env);
  const template = Template.fromStack(stack);
  const assembly = app.synth();
  return { app, stack, template, json: template.toJSON() as Synthesized['json'], assembly };
}

/** Resources of one type as [logicalId, properties] pairs. */
export function resourcesOfType(json: Synthesized['json'], type: string): [string, CfnProps][] {
  return Object.entries(json.Resources)
    .filter(([, r]) => r.Type === type)
    .map(([id, r]) => [id, r.Properties ?? {}]);
}
