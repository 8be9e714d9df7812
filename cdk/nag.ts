import { Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Flattens a resolved CloudFormation value the way cdk-nag 3 names its findings (`Ref` -> `<Id>`,
 * `Fn::GetAtt` -> `<Id.Attr>`, `Fn::Join` joined, `${X}` -> `<X>`), so an acknowledgement can name
 * one exact finding such as `AwsSolutions-IAM5[Resource::arn:...:task/<Cluster>/*]` instead of the
 * whole rule. The nag test fails if this ever drifts from cdk-nag's own format.
 */
export function flattenCfnValue(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof value === 'object' && value !== null) {
    const node = value as Record<string, unknown>;
    const join = node['Fn::Join'];
    if (Array.isArray(join)) {
      const [delimiter, items] = join as [string, unknown[]];
      return items.map(flattenCfnValue).join(delimiter);
    }
    if (node['Fn::Sub'] !== undefined) return flattenCfnValue(node['Fn::Sub']);
    const getAtt = node['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${flattenCfnValue(getAtt[0])}.${flattenCfnValue(getAtt[1])}>`;
    if (node['Fn::ImportValue'] !== undefined) return flattenCfnValue(node['Fn::ImportValue']);
    if (node.Ref !== undefined) return `<${flattenCfnValue(node.Ref)}>`;
  }
  return JSON.stringify(value);
}

/** The cdk-nag finding id of a wildcard resource in an IAM policy (AwsSolutions-IAM5). */
export function wildcardResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flattenCfnValue(Stack.of(scope).resolve(resource))}]`;
}
