Feature: Operators can trace every request
  Every answer names the request it answers with an id, in its X-Request-Id
  header, and a failed visit is logged with that id: an operator shown an
  answer finds its lines in the logs. A request that already carries an id,
  given by a load balancer in front or by a visitor's own tools, keeps it.

  Scenario: Every answer names a request of its own
    When 3 visitors open the page one after another
    Then each answer names its request, no two the same

  Scenario: A request that comes with an id keeps it
    When a visitor opens the page with the request id "support-case-4711"
    Then the visitor sees the page
    And the answer names the request "support-case-4711"
