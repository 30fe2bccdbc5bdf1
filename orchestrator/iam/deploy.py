"""The IAM actions `orch deploy` and `orch destroy` need, beside orchestrator.deploy.stack.

Two parts. What orch itself calls (CloudFormation's change sets and events, and the code
upload to the artifact bucket): ``tests/aws/test_deploy_permissions.py`` records those
calls under moto. And what CloudFormation calls *with the deployer's credentials* to
create, update and delete each resource type of ``cfn/orchestrator.yaml`` (orch passes no
service role): listed per type below, for the properties that template sets, from the
handler permissions in CloudFormation's resource type schemas. Moto evaluates no IAM, so
that second part is a declaration checked only for completeness: a test fails when the
template gains a resource type this table does not list.
"""

from __future__ import annotations

from typing import Mapping

DEPLOY_CALLS = frozenset(
    {
        "cloudformation:GetTemplateSummary",
        "cloudformation:DescribeStacks",
        "cloudformation:GetTemplate",
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:DeleteChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DescribeStackEvents",
        "cloudformation:DeleteStack",  # a first deploy whose change set fails leaves an empty stack to remove
        "s3:PutObject",  # the code zip, to --bucket
        "s3:GetObject",  # HeadObject: is this zip already uploaded?
        "s3:ListBucket",  # HeadBucket: does --bucket exist?
    }
)
DESTROY_CALLS = frozenset(
    {
        "cloudformation:DescribeStacks",
        "cloudformation:ListStackResources",
        "cloudformation:DeleteStack",
        "cloudformation:DescribeStackEvents",
    }
)
STACK_SET_CALLS = frozenset(
    {  # `orch deploy --stack-set` (orchestrator.deploy.stackset), in the administrator account
        "cloudformation:GetTemplateSummary",
        "cloudformation:DescribeStackSet",
        "cloudformation:CreateStackSet",
        "cloudformation:UpdateStackSet",
        "cloudformation:ListStackInstances",
        "cloudformation:CreateStackInstances",
        "cloudformation:UpdateStackInstances",  # a changed parameter of an existing stack instance
        "cloudformation:DescribeStackSetOperation",
        "cloudformation:ListStackSetOperationResults",
        "iam:PassRole",  # --administration-role-arn: the stack set runs as that role
        "s3:PutObject", "s3:GetObject", "s3:ListBucket",  # the code zip, to each region's bucket
    }
)
CODE_UPLOAD = frozenset({"s3:PutObject", "s3:GetObject", "s3:ListBucket"})  # on the artifact bucket, not the evidence one

STACK_RESOURCES: Mapping[str, frozenset[str]] = {
    "AWS::DynamoDB::Table": frozenset(
        {
            "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTable", "dynamodb:DeleteTable",
            "dynamodb:UpdateTimeToLive", "dynamodb:DescribeTimeToLive", "dynamodb:UpdateContinuousBackups",
            "dynamodb:DescribeContinuousBackups", "dynamodb:TagResource", "dynamodb:ListTagsOfResource",
        }
    ),
    "AWS::S3::Bucket": frozenset(
        {
            "s3:CreateBucket", "s3:DeleteBucket", "s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration",
            "s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock", "s3:PutBucketOwnershipControls",
            "s3:GetBucketOwnershipControls", "s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration",
            "s3:PutBucketTagging", "s3:GetBucketTagging",
        }
    ),
    "AWS::S3::BucketPolicy": frozenset({"s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"}),
    "AWS::SNS::Topic": frozenset(
        {"sns:CreateTopic", "sns:DeleteTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe",
         "sns:Unsubscribe", "sns:ListSubscriptionsByTopic", "sns:TagResource", "sns:ListTagsForResource"}
    ),
    "AWS::Logs::LogGroup": frozenset(
        {"logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:DescribeLogGroups", "logs:PutRetentionPolicy",
         "logs:DeleteRetentionPolicy", "logs:TagResource", "logs:ListTagsForResource"}
    ),
    "AWS::EC2::SecurityGroup": frozenset(
        {"ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:DescribeSecurityGroups", "ec2:AuthorizeSecurityGroupEgress",
         "ec2:RevokeSecurityGroupEgress", "ec2:CreateTags"}
    ),
    "AWS::EC2::SecurityGroupIngress": frozenset(
        {"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DescribeSecurityGroups",
         "ec2:DescribeSecurityGroupRules"}
    ),
    "AWS::IAM::Role": frozenset(
        {"iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy",
         "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:TagRole"}
    ),
    "AWS::IAM::Policy": frozenset({"iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"}),
    "AWS::SSM::Parameter": frozenset({"ssm:PutParameter", "ssm:GetParameters", "ssm:DeleteParameter", "ssm:AddTagsToResource"}),
    # GuardAssociation=true only; the association runs as the instances' SSM agent, with no role of the stack's.
    "AWS::SSM::Association": frozenset({"ssm:CreateAssociation", "ssm:DescribeAssociation", "ssm:UpdateAssociation",
                                        "ssm:DeleteAssociation", "ssm:ListAssociations"}),
    "AWS::Lambda::Function": frozenset(
        {"lambda:CreateFunction", "lambda:GetFunction", "lambda:DeleteFunction", "lambda:UpdateFunctionCode",
         "lambda:UpdateFunctionConfiguration", "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency",
         "lambda:TagResource", "lambda:ListTags", "iam:PassRole", "s3:GetObject",  # the code from --bucket
         "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"}  # its VpcConfig
    ),
    "AWS::Lambda::EventInvokeConfig": frozenset(
        {"lambda:PutFunctionEventInvokeConfig", "lambda:UpdateFunctionEventInvokeConfig", "lambda:GetFunctionEventInvokeConfig",
         "lambda:DeleteFunctionEventInvokeConfig"}
    ),
    "AWS::Lambda::Permission": frozenset({"lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"}),
    "AWS::Events::Rule": frozenset(
        {"events:PutRule", "events:DescribeRule", "events:DeleteRule", "events:PutTargets", "events:RemoveTargets",
         "events:ListTargetsByRule"}
    ),
    "AWS::CloudWatch::Alarm": frozenset({"cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"}),
}
STACK = frozenset().union(*STACK_RESOURCES.values())

DEPLOY = DEPLOY_CALLS | STACK_SET_CALLS | STACK
DESTROY = DESTROY_CALLS | STACK
