Feature: When the page-view store is unavailable
  The counts live in a separate store. When it cannot be reached, visitors
  get a short apology straight away instead of an error page or a wait,
  and the service carries on by itself once the store is back.

  @outage
  Scenario: A visitor gets an apology while the store is down
    Given the page has been seen 3 times
    And the page-view store is down
    When a visitor opens the page
    Then the visitor is given the apology "Sorry, something went wrong 😔"

  @outage @recovery
  Scenario: The service recovers by itself when the store comes back
    Given the page has been seen 3 times
    And a visitor has opened the page
    And the page-view store is down
    When a visitor opens the page
    Then the visitor is given the apology "Sorry, something went wrong 😔"
    When the page-view store is back
    And a visitor opens the page
    Then the visitor is told "This page has been seen 5 times."

  @outage @hang
  Scenario: A store that stops answering does not keep the visitor waiting
    Given the page has been seen 8 times
    And a visitor has opened the page
    And the page-view store stops answering
    When a visitor opens the page
    Then the visitor is given the apology "Sorry, something went wrong 😔"
    And the visitor got the answer within the configured wait for the store

  @outage @hang
  Scenario: A store that was stalled from the start keeps no visitor waiting
    Given the page-view store stops answering
    When a visitor opens the page
    Then the visitor is given the apology "Sorry, something went wrong 😔"
    And the visitor got the answer within the configured wait for the store

  @outage @hang @recovery
  Scenario: The service recovers by itself when a stalled store answers again
    Given a visitor has opened the page
    And the page-view store stops answering
    And a visitor has opened the page
    When the page-view store is back
    And a visitor opens the page
    Then the visitor sees the page

  @outage
  Scenario: The rest of the service keeps working while the store is down
    Given the page-view store is down
    When the operator checks whether the service is alive
    Then the operator is told the service is alive
    When the operator checks whether the service can serve visitors
    Then the operator is told the service is not ready
