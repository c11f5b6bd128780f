Feature: Requests that are not visits
  Only opening the page counts as a visit. Asking for other addresses,
  doing something else than reading the page, and the checks operators
  run never change the count.

  Background:
    Given the page has been seen 7 times

  Scenario: Asking for an address that does not exist
    When a visitor asks for "/about"
    Then the visitor is told the page was not found
    And the page has been seen 7 times in total

  Scenario Outline: Doing something other than reading the page
    When someone sends a <method> request to the page
    Then they are told that is not allowed
    And the page has been seen 7 times in total

    Examples:
      | method |
      | POST   |
      | PUT    |
      | DELETE |
      | PATCH  |
      | HEAD   |

  Scenario: Operators checking on the service
    When the operator checks whether the service is alive
    Then the operator is told the service is alive
    When the operator checks whether the service can serve visitors
    Then the operator is told the service is ready
    And the page has been seen 7 times in total
