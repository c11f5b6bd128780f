Feature: Carrying on after the page-view store restarts
  The service keeps one connection to the store. When the store restarts,
  that connection is gone; the next visitor must not pay for it.

  @outage @recovery
  Scenario: The first visitor after a quiet restart of the store is counted
    Given the page has been seen 30 times
    And a visitor has opened the page
    And the page-view store restarts while nobody visits
    When a visitor opens the page
    Then the visitor is told "This page has been seen 32 times."

  @outage @recovery
  Scenario: Visitors arriving together after a restart of the store are all counted
    Given the page has been seen 40 times
    And a visitor has opened the page
    And the page-view store restarts while nobody visits
    When 10 visitors open the page at the same moment
    Then the visitors are told the counts 42 to 51 between them

  @connections
  Scenario: Visitors one after another are served over one connection to the store
    Given a visitor has opened the page
    And the store starts counting the connections it receives
    When 5 visitors open the page one after another
    Then the visitors are told the counts 2 to 6, in order
    And the store has received no new connection

  @outage @hang @connections
  Scenario: After the store stopped answering, the service connects afresh once
    Given a visitor has opened the page
    And the page-view store stops answering
    And a visitor has opened the page
    And the page-view store has come back
    And the store starts counting the connections it receives
    When 5 visitors open the page one after another
    Then every visitor sees the page
    And the store has received 1 new connection

  @outage @connections
  Scenario: A visit the store refuses is apologised for and the connection kept
    Given a visitor has opened the page
    And the store starts counting the connections it receives
    And the page-view count in the store has been overwritten with "lots"
    When a visitor opens the page
    Then the visitor is given the apology "Sorry, something went wrong 😔"
    When the page-view count in the store is put back to 9
    And a visitor opens the page
    Then the visitor is told "This page has been seen 10 times."
    And the store has received no new connection

  # A managed Redis moves its address to a new primary when it fails over; the
  # old connection still reaches the old server, now a replica refusing writes.
  @outage @connections
  Scenario: A store that has become a replica is left for a fresh connection
    Given a visitor has opened the page
    And the store starts counting the connections it receives
    And the page-view store has become a replica refusing writes
    When a visitor opens the page
    Then the visitor is given the apology "Sorry, something went wrong 😔"
    When the page-view store is a primary again
    And a visitor opens the page
    Then the visitor is told "This page has been seen 2 times."
    And the store has received 1 new connection
