import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/**
 * How tasks and the Lambda reach AWS APIs (ECR, CloudWatch Logs, Secrets Manager, ECS, ElastiCache):
 * - `endpoints`: VPC interface endpoints in every private subnet's AZ plus the S3 gateway endpoint;
 *   no route to the internet at all (private isolated subnets).
 * - `nat`: NAT gateway(s) in public subnets plus the S3 gateway endpoint (image layers bypass the NAT).
 * - `existing`: an imported VPC already provides egress; nothing is created.
 */
export type EgressMode = 'endpoints' | 'nat' | 'existing';

/** Services the workers and the Lambda call; see docs/deploy.md for who needs which. */
export const INTERFACE_ENDPOINT_SERVICES: ReadonlyArray<{
  id: string;
  service: ec2.InterfaceVpcEndpointAwsService;
}> = [
  { id: 'EcrApi', service: ec2.InterfaceVpcEndpointAwsService.ECR },
  { id: 'EcrDocker', service: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER },
  { id: 'Logs', service: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS },
  { id: 'SecretsManager', service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER },
  { id: 'Ecs', service: ec2.InterfaceVpcEndpointAwsService.ECS },
  { id: 'ElastiCache', service: ec2.InterfaceVpcEndpointAwsService.ELASTICACHE },
];

export interface NetworkProps {
  /** Import this VPC (needs a context lookup: credentials or a committed cdk.context.json). */
  readonly existingVpcId?: string;
  readonly egress: EgressMode;
  /** NAT gateways when `egress` is `nat` (1 = cheapest, one per AZ = no single-AZ egress). */
  readonly natGateways: number;
  readonly logRetention: logs.RetentionDays;
}

/** The VPC (new: two AZs, private subnets; or imported) and its egress path. */
export class Network extends Construct {
  readonly vpc: ec2.IVpc;
  /** Where workers, the Lambda, the cache and the endpoints live. */
  readonly privateSubnets: ec2.SubnetSelection;
  /** Set in `endpoints` mode: clients must be allowed in with `allowEndpointAccessFrom`. */
  readonly endpointSecurityGroup?: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);

    if (props.existingVpcId !== undefined) {
      if (props.egress === 'nat') {
        throw new Error(
          'egress "nat" creates a NAT gateway and needs a new VPC; with vpcId use "existing" or "endpoints"',
        );
      }
      this.vpc = ec2.Vpc.fromLookup(this, 'Vpc', { vpcId: props.existingVpcId });
      // Prefer subnets that route out (NAT) and fall back to isolated ones (endpoints-only VPCs).
      this.privateSubnets = {
        subnetType:
          this.vpc.privateSubnets.length > 0
            ? ec2.SubnetType.PRIVATE_WITH_EGRESS
            : ec2.SubnetType.PRIVATE_ISOLATED,
      };
    } else {
      if (props.egress === 'existing') {
        throw new Error('egress "existing" only applies to an imported VPC (context vpcId)');
      }
      const useNat = props.egress === 'nat';
      const privateSubnetType = useNat ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED;
      const vpc = new ec2.Vpc(this, 'Vpc', {
        maxAzs: 2,
        natGateways: useNat ? props.natGateways : 0,
        subnetConfiguration: [
          ...(useNat ? [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }] : []),
          { name: 'private', subnetType: privateSubnetType, cidrMask: 22 },
        ],
        restrictDefaultSecurityGroup: true,
      });
      const flowLogGroup = new logs.LogGroup(this, 'FlowLogGroup', {
        retention: props.logRetention,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      vpc.addFlowLog('FlowLog', {
        destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
        trafficType: ec2.FlowLogTrafficType.REJECT,
      });
      this.vpc = vpc;
      this.privateSubnets = { subnetType: privateSubnetType };
    }

    if (props.egress !== 'existing') {
      // Free, and keeps ECR image layers (stored in S3) off the NAT's per-GB charge.
      this.vpc.addGatewayEndpoint('S3', {
        service: ec2.GatewayVpcEndpointAwsService.S3,
        subnets: [this.privateSubnets],
      });
    }

    if (props.egress === 'endpoints') {
      this.endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
        vpc: this.vpc,
        description: 'VPC interface endpoints: HTTPS from the worker and Lambda security groups only',
        allowAllOutbound: false,
      });
      for (const { id: endpointId, service } of INTERFACE_ENDPOINT_SERVICES) {
        this.vpc.addInterfaceEndpoint(endpointId, {
          service,
          subnets: this.privateSubnets,
          securityGroups: [this.endpointSecurityGroup],
          open: false,
          privateDnsEnabled: true,
        });
      }
    }
  }

  /** Lets a client security group reach the interface endpoints (no-op without endpoints). */
  allowEndpointAccessFrom(client: ec2.ISecurityGroup, description: string): void {
    this.endpointSecurityGroup?.addIngressRule(client, ec2.Port.tcp(443), description);
  }
}
