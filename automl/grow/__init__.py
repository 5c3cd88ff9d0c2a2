"""Incremental mode: grow a trained model into a Tree-CNN when new classes arrive.

Roy, Panda & Roy, "Tree-CNN: A Hierarchical Deep Convolutional Neural Network for Incremental
Learning" (2018; Neural Networks 2020). :mod:`placement` decides where new classes go,
:mod:`grower` trains only what changed, :mod:`leafsearch` finds a new branch's architecture
with the engine, :mod:`record` keeps the tree in a study, :mod:`model` runs it.
"""
