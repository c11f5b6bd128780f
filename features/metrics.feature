@metrics @serial
Feature: Operators see how the service is doing
  Operators watch the service through its metrics: how many requests it
  answered and how, how long the answers took, and how the page-view store
  is doing. Visits and failed visits show up counted by outcome and timed,
  and a request for a page that does not exist never adds a new series.
  Its scenarios run while no other visitor does, so the figures they read are
  their own.

  Scenario: Visits are counted by outcome and timed
    Given the operator has noted the service's figures
    When 3 visitors open the page one after another
    And a visitor asks for "/about"
    Then the operator sees 3 more answers from the page with status 200, each timed
    And the operator sees 1 more answer for a page that does not exist, with status 404
    And the operator sees 3 more visits recorded in the page-view store, each timed
    And the operator sees no request still being served

  Scenario: Asking for pages that do not exist adds no new series
    Given a visitor has asked for "/about"
    And the operator has noted the service's figures
    When a visitor asks for "/no-such-page"
    And a visitor asks for "/another/missing/page?with=query"
    Then the operator sees 2 more answers for a page that does not exist, with status 404
    And the operator sees no more series than before
    And no series is named after an address a visitor asked for

  @outage
  Scenario: A failed visit shows as a store error and an apology
    Given the operator has noted the service's figures
    And a visitor has opened the page
    And the page-view store is down
    When a visitor opens the page
    Then the visitor is given the apology "Sorry, something went wrong 😔"
    And the operator sees 1 more answer from the page with status 200, each timed
    And the operator sees 1 more answer from the page with status 500, each timed
    And the operator sees 1 more error of the page-view store, of type "unreachable"

  @outage @hang @connections
  Scenario: Each time the service connects to the store again is counted
    Given the operator has noted the service's figures
    And a visitor has opened the page
    And the page-view store stops answering
    And a visitor has opened the page
    And the page-view store has come back
    And a visitor has opened the page
    And the page-view store stops answering
    And a visitor has opened the page
    And the page-view store has come back
    When a visitor opens the page
    Then the operator sees 2 more reconnections to the page-view store
