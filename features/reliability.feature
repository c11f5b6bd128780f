@reliability
Feature: Reliability under stress
  The count stays exact and visitors keep being answered when many arrive at
  once, when clients send nonsense, and when the service is being stopped.

  Scenario: A crowd arriving at the same moment is counted exactly
    Given the page has been seen 1000 times
    When 500 visitors open the page at the same moment
    Then every visitor sees the page
    And no two visitors are told the same count
    And the page has been seen 1500 times in total

  @over-the-wire
  Scenario Outline: Requests that make no sense are turned away and not counted
    Given the page has been seen 12 times
    When someone sends <nonsense> instead of a visit
    Then they are turned away without a page
    And the page has been seen 12 times in total
    When a visitor opens the page
    Then the visitor is told "This page has been seen 13 times."

    Examples:
      | nonsense            |
      | gibberish           |
      | oversized-headers   |
      | an-unknown-protocol |
      | no-address          |
      | a-broken-header     |

  @shutdown
  Scenario: Visits in progress are completed when the service is stopped
    Given the page has been seen 5 times
    And the page-view store is slow to answer for 300 milliseconds
    When 20 visitors open the page and the service is stopped meanwhile
    Then every visitor sees the page
    And the page has been seen 25 times in total
    And the service no longer accepts visitors

  @shutdown @drain
  Scenario: A service being stopped first tells the load balancer and keeps serving meanwhile
    Given the page has been seen 7 times
    When the service is asked to stop
    And the load balancer checks whether to send visitors to the service
    Then the load balancer is told the service is draining
    When the operator checks whether the service can serve visitors
    Then the operator is told the service is not ready
    When a visitor opens the page
    Then the visitor is told "This page has been seen 8 times."
    And the visitor's connection is closed after the answer
    When the drain delay has passed
    Then the service no longer accepts visitors
