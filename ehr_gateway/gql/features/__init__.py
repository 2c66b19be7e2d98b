"""The schema by feature: each module defines the Query and Mutation (or Subscription) fields
of one feature; gql.schema joins them."""
