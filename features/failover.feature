Feature: Counting on when the store's primary is lost
  In production the count can be kept by a Redis primary with replicas, watched by
  three sentinels. When the primary is lost, the sentinels promote a replica, and
  the service follows them by itself: nobody restarts it.
  
  Redis copies each write to the replicas a moment after it has acknowledged it, so
  a failover can lose the visits counted in that moment: the count may go back by
  at most those. No visit is ever counted twice, since the service never sends a
  count again when it does not know whether the first one was applied. These
  scenarios wait until the replicas have every visit, so they expect none lost.
  Each one runs alone: its five Redis processes would slow the others down.

  @sentinel @failover @crash @serial
  Scenario: Visitors are counted again soon after the primary is lost
    Given the page has been seen 10 times
    And the replicas have every visit so far
    When the store's primary is lost
    And visitors keep opening the page until one is counted
    Then the first visitor counted is told "This page has been seen 11 times."
    And every visitor before was given the apology "Sorry, something went wrong 😔"

  @sentinel @failover @serial
  Scenario: The service moves to the new primary as soon as the sentinels name it
    Given the page has been seen 20 times
    And a visitor has opened the page
    And the replicas have every visit so far
    And the store's primary stops answering, keeping its connections open
    And the sentinels have named a new primary
    When a visitor opens the page
    Then the visitor is told "This page has been seen 22 times."

  @sentinel @failover @serial
  Scenario: A sentinel that stops answering does not keep the service from the new primary
    Given the page has been seen 40 times
    And a visitor has opened the page
    And the replicas have every visit so far
    And the first sentinel the service knows stops answering, keeping its connections open
    And the store's primary stops answering, keeping its connections open
    And the sentinels have named a new primary
    When a visitor opens the page
    Then the visitor is told "This page has been seen 42 times."

  @sentinel @failover @serial
  Scenario: A lost primary that answers again follows the new one
    Given the page has been seen 30 times
    And the replicas have every visit so far
    And the store's primary stops answering, keeping its connections open
    And the sentinels have named a new primary
    When the old primary answers again
    And a visitor opens the page
    Then the visitor is told "This page has been seen 31 times."
    And the old primary follows the new one, holding the count 31

  @acl
  Scenario Outline: The service's Redis user may count page views and nothing else
    When the service's Redis user sends "<command>"
    Then Redis <answer>

    Examples: What counting needs
      | command             | answer  |
      | INCRBY page_views 1 | runs it |
      | PING                | runs it |

    Examples: Anything else
      | command                  | answer                            |
      | GET page_views           | refuses it for lack of permission |
      | INCRBY another_key 1     | refuses it for lack of permission |
      | FLUSHALL                 | refuses it for lack of permission |
      | CONFIG SET appendonly no | refuses it for lack of permission |
      | ACL SETUSER intruder on  | refuses it for lack of permission |
